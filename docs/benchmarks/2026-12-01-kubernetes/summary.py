import json, glob, statistics as st, sys
DIR = sys.argv[1] if len(sys.argv) > 1 else 'bench-results/k8s-demo'
rows = {}
for f in sorted(glob.glob(f'{DIR}/*-*-*.json')):
    name = f.split('/')[-1].rsplit('-', 1)[0]
    try: r = json.load(open(f))
    except Exception as e: print('bad', f, e); continue
    rows.setdefault(name, []).append(r)
phases = ['validate','prepare','checkpoint','transfer','restore','replay','fence','finalize']
print('| runtime / strategy | n | outcome | lost/dup/dup-out | state match | total ms | downtime ms | observed gap ms | freeze ms | image | ' + ' | '.join(phases) + ' |')
print('|' + '---|' * (10 + len(phases)))
for name, rs in rows.items():
    med = lambda xs: round(st.median(xs)) if xs else '-'
    ph = {p: med([x['ms'] for r in rs for x in r['phases'] if x['phase'] == p]) for p in phases}
    v = [r['verification'] for r in rs]
    print(f"| {name} | {len(rs)} | {','.join(sorted(set(r['outcome'] for r in rs)))} | {sum(x['lost'] for x in v)}/{sum(x['duplicated'] for x in v)}/{sum(x['duplicateOutputs'] for x in v)} | {all(r.get('stateMatch') for r in rs)} | {med([r['totalMs'] for r in rs])} | {med([r['downtimeMs'] for r in rs])} | {med([x.get('observedDowntimeMs', 0) for x in v])} | {med([r.get('freezeMs', 0) for r in rs])} | {med([r.get('checkpointBytes', 0)//1000 for r in rs])} kB | " + ' | '.join(str(ph[p]) for p in phases) + ' |')
