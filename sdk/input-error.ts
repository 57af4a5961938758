import { FAILURE } from '../lib/contracts';

/** Input refused before anything started; the message is the one the workflow itself would fail with. */
export class Ms2mInputError extends Error {
  readonly type = FAILURE.InvalidInput;
  override name = 'Ms2mInputError';
}
