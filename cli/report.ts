/** Human-readable rendering of a MigrationReport for the terminal. */
import Table from 'cli-table3';
import { PHASES, phaseMs, type MigrationReport } from '../lib/migration';

const kb = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MB`;

export function formatReport(r: MigrationReport, ui?: string): string {
  const out: string[] = [];
  const ok = r.outcome === 'completed';
  out.push('');
  out.push(`Migration ${r.migrationId}: ${r.service} ${r.sourceNode} → ${r.targetNode} (${r.strategy}) — ${ok ? 'COMPLETED' : 'ROLLED BACK'}`);
  if (r.failure) out.push(`  failed in ${r.failure.phase}: [${r.failure.type}] ${r.failure.message}`);
  if (r.sourceLost) out.push(`  the source died during ${r.sourceLost.detectedIn}; the copy adopted its stream`);
  if (r.cancelIgnored) out.push('  a cancellation arrived during the fence, too late to roll back; the migration finished');
  out.push(`  ${r.sourceInstance} → ${r.targetInstance}`);

  const phases = new Table({ head: ['phase', 'ms'], colAligns: ['left', 'right'], style: { head: [], border: [] } });
  for (const p of PHASES) {
    const ran = r.phases.some((x) => x.phase === p);
    phases.push([p, ran ? String(phaseMs(r, p)) : '—']);
  }
  phases.push(['total', String(r.totalMs)]);
  out.push(phases.toString());

  const m = new Table({ head: ['metric', 'value'], style: { head: [], border: [] } });
  m.push(['downtime (fence → copy serving)', `${r.downtimeMs} ms`]);
  m.push(['CRIU freeze of the source', `${r.freezeMs} ms`]);
  m.push(['checkpoint size', kb(r.checkpointBytes)]);
  if (r.strategy === 'shadow') {
    m.push(['replayed by the copy', `${r.replay.replayed} messages (final lag ${r.replay.finalLag}, ended by ${r.replay.endedBy})`]);
    if (r.replay.lagSlopePerSec !== null) {
      const est = r.replay.estimatedCatchUpMs;
      m.push(['lag trend at the end of replay', `${r.replay.lagSlopePerSec.toFixed(1)} msg/s at ${(r.replay.applyRatePerSec ?? 0).toFixed(0)} msg/s applied${est !== null ? `; estimated catch-up ${est} ms` : ''}`]);
    }
  }
  m.push(['state match at the fence', r.stateMatch ? 'yes (digests equal)' : 'NO']);
  const a = r.accounting;
  m.push(['handoff (instances\' own counts)', a.handoff]);
  m.push([
    'source during the migration',
    `applied ${a.source.applied}, skipped ${a.source.skippedDuplicates} duplicates, ${a.source.gaps} gaps, logged ${a.source.logged} for the copy, emitted ${a.source.outputsEmitted} outputs; position ${a.source.position}`,
  ]);
  if (a.copy) {
    m.push([
      'copy',
      `restored at ${a.copy.restoredAt}, replayed ${a.copy.replayed} (skipped ${a.copy.replaySkipped} already in the checkpoint, ${a.copy.replayGaps} missing), suppressed ${a.copy.outputsSuppressed} outputs` +
        (a.copy.afterSwap ? `; serving: applied ${a.copy.afterSwap.applied}, skipped ${a.copy.afterSwap.skippedDuplicates} duplicates, ${a.copy.afterSwap.gaps} gaps, emitted ${a.copy.afterSwap.outputsEmitted} outputs` : ''),
    ]);
  }
  m.push(['serving at the end', a.serving ? `${a.serving.instance} at position ${a.serving.position}, the only consumer (${a.serving.consumers}) of the primary queue` : `NONE: ${r.notServing ?? 'not checked'}`]);
  const v = r.verification;
  if (v) {
    m.push(['— test oracle —', 'from the producers\' and the output logs']);
    m.push(['published / processed', `${v.published} / ${v.processed}`]);
    m.push(['lost', String(v.lost)]);
    m.push(['applied twice', String(v.duplicated)]);
    m.push(['duplicate outputs', String(v.duplicateOutputs)]);
    m.push(['final state = producers\' log', v.finalStateMatchesProducers ? 'yes' : 'NO']);
    if (v.order) {
      m.push([
        'apply sequences (ledger oracle)',
        `${v.order.ok ? 'one sequence' : 'DIFFER'}: ${v.order.positions} positions, ${v.order.compared} compared across instances, ${v.order.divergences} divergences, ${v.order.outOfOrder} out of order, ${v.order.outputMismatches} wrong outputs`,
      ]);
      for (const p of v.order.problems.slice(0, 5)) m.push(['', p]);
    }
    m.push(['observed downtime (outputs)', `${v.observedDowntimeMs} ms`]);
    m.push(['e2e latency during: max / p99', `${v.maxE2eLatencyMs} / ${v.p99E2eLatencyMs} ms`]);
    m.push(['e2e latency before: max / p99', `${v.baselineMaxE2eLatencyMs} / ${v.baselineP99E2eLatencyMs} ms`]);
  }
  out.push(m.toString());
  if (ui) out.push(`Temporal Web UI: ${ui}/namespaces/default/workflows/${encodeURIComponent(r.workflowId)}`);
  return out.join('\n');
}

export function verdict(r: MigrationReport): boolean {
  const v = r.verification;
  return (
    r.outcome === 'completed' && r.stateMatch && r.accounting.handoff === 'exact' && !!v && v.lost === 0 && v.duplicated === 0 && v.duplicateOutputs === 0 && v.finalStateMatchesProducers
  );
}
