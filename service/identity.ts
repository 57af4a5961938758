/**
 * Where an instance reads who it is. A restored copy keeps the whole memory and environment of the
 * instance it was checkpointed from, so its identity must come from something its runtime changes for
 * it before it runs: the local runtime sets the UTS hostname of a restored process while it is still
 * stopped; on Kubernetes a restored container keeps its old hostname too, but a downward-API volume shows
 * the new pod's name, so there the pod sets MS2M_IDENTITY_FILE to that file (e.g. /etc/ms2m/pod/name).
 * The variable itself is baked into the checkpoint; only the file's content differs in the copy.
 */
import { readFileSync } from 'node:fs';
import * as os from 'node:os';

export type IdentitySource = () => string;

export function identitySource(file = process.env.MS2M_IDENTITY_FILE): IdentitySource {
  if (!file) return () => os.hostname();
  // Read on every call (it is a tmpfs file of a few bytes): the copy must see the new name at once.
  return () => {
    const id = readFileSync(file, 'utf8').trim();
    if (!id) throw new Error(`MS2M_IDENTITY_FILE ${file} is empty; it should hold the pod's name (a downward-API volume item of metadata.name)`);
    return id;
  };
}
