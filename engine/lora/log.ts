/**
 * Debug logging for LoRA loading and application. On with LORAGRAPH_LORA_DEBUG=1, or SD_LORA_DEBUG set to
 * anything (as SD.Next users expect); lines go to a function the caller can replace (default console.error).
 */

export type LoraLogger = (line: string) => void;

export interface LoraLogOptions {
  /** Where lines go (default console.error). */
  readonly log?: LoraLogger;
  /** Force debug lines on or off (default: from the environment). */
  readonly debug?: boolean;
}

export function loraDebugFromEnv(env: NodeJS.ProcessEnv = process.env): boolean {
  const own = env.LORAGRAPH_LORA_DEBUG;
  return (own !== undefined && own !== '' && own !== '0' && own.toLowerCase() !== 'false') || env.SD_LORA_DEBUG !== undefined;
}

export interface LoraLog {
  /** Always printed (a problem the user should know about, one line). */
  warn(line: string): void;
  /** Printed only in debug mode; `line` is built lazily. */
  debug(line: () => string): void;
  readonly debugging: boolean;
}

export function loraLog(options: LoraLogOptions = {}): LoraLog {
  const sink = options.log ?? ((line: string) => console.error(line));
  const debugging = options.debug ?? loraDebugFromEnv();
  return {
    warn: (line) => sink(`[lora] ${line}`),
    debug: (line) => {
      if (debugging) sink(`[lora debug] ${line()}`);
    },
    debugging,
  };
}
