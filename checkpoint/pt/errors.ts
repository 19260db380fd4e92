/** Every way a checkpoint file can be refused: one error type, a message that says what and where. */
export class CheckpointError extends Error {
  override readonly name = "CheckpointError";
}
