/**
 * Errors a user can fix (bad flag, bad file, bad value) exit 2 with one line;
 * runtime failures exit 1. The CLI prints `message` only, never a stack,
 * unless FRAMECOST_DEBUG=1.
 */
export class UserError extends Error {
  readonly exitCode = 2;
  constructor(message: string) {
    super(message);
    this.name = "UserError";
  }
}

export class RuntimeFailure extends Error {
  readonly exitCode = 1;
  constructor(message: string) {
    super(message);
    this.name = "RuntimeFailure";
  }
}

/** Exit code for any thrown value: 2 for user mistakes, 1 otherwise. */
export function exitCodeOf(err: unknown): number {
  if (err instanceof UserError) return 2;
  return 1;
}
