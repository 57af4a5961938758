import { mkdtempSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { identitySource } from '../../service/identity';

describe('where an instance reads who it is', () => {
  it('is the UTS hostname without MS2M_IDENTITY_FILE (the local runtime renames a restored process)', () => {
    expect(identitySource('')()).toBe(os.hostname());
  });

  it('is the file\'s content with it, read again on every call (a restored pod\'s downward-API file changes under it)', () => {
    const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'ms2m-id-')), 'name');
    writeFileSync(file, 'ledger-7d9f-abcde\n');
    const id = identitySource(file);
    expect(id()).toBe('ledger-7d9f-abcde');
    writeFileSync(file, 'ledger-1a2b3c4d');
    expect(id()).toBe('ledger-1a2b3c4d');
    writeFileSync(file, '');
    expect(() => id()).toThrow(/MS2M_IDENTITY_FILE .* is empty/);
  });
});
