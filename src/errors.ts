// User-facing errors: one line naming the file/field/offset and what was expected. The CLI prints
// `attfc: <message>` and exits non-zero, with no stack trace. Programming errors stay plain Errors.
export class AttfcError extends Error {
  constructor(message: string, readonly exitCode = 1) {
    super(message);
    this.name = 'AttfcError';
  }
}

export function isUserError(e: unknown): e is AttfcError {
  return e instanceof AttfcError || (e instanceof Error && e.name === 'WasmHeapExhaustedError');
}
