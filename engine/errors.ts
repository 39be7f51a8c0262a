/**
 * Typed errors for everything a user can cause: a bad file, a bad workflow, a missing tokenizer, a LoRA
 * that does not fit the model. Each carries a stable `code` (for APIs and tests) and a message that names the
 * thing and the fix. Programming errors stay plain `Error`s.
 */
export class LoraGraphError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** A file that is not what it claims to be: corrupt or hostile safetensors, a pickle, an unknown layout. */
export class FileFormatError extends LoraGraphError {
  readonly file: string;

  constructor(file: string, problem: string, code = 'bad_file') {
    super(code, `${file}: ${problem}`);
    this.file = file;
  }
}

/** A checkpoint whose tensors do not form a model we can run. */
export class ModelLayoutError extends LoraGraphError {
  constructor(message: string) {
    super('unknown_model_layout', message);
  }
}

/** The caller asked for something that is not there (a model, LoRA, tokenizer, input image...). */
export class NotFoundError extends LoraGraphError {
  constructor(message: string) {
    super('not_found', message);
  }
}

/** A value given by the user (a node input, a CLI flag, a tag) is out of range or malformed. */
export class InvalidInputError extends LoraGraphError {
  constructor(message: string) {
    super('invalid_input', message);
  }
}

/** A run was stopped by an interrupt request. */
export class InterruptedError extends LoraGraphError {
  constructor() {
    super('interrupted', 'Interrupted by request');
  }
}
