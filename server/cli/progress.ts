/** Terminal progress for `loragraph run` (local or `--server`): a bar per sampling node on a TTY, else lines. */
import cliProgress from 'cli-progress';

export class RunProgress {
  private readonly bar?: cliProgress.SingleBar;
  private barStarted = false;

  constructor(
    private readonly classOf: (node: string) => string | undefined,
    private readonly quiet = false,
  ) {
    if (process.stderr.isTTY && !quiet) {
      this.bar = new cliProgress.SingleBar({ format: ' {node} |{bar}| {value}/{total}', hideCursor: true, clearOnComplete: true, stream: process.stderr }, cliProgress.Presets.shades_classic);
    }
  }

  executing(node: string): void {
    this.stop();
    if (!this.bar && !this.quiet) console.error(`running ${node} (${this.classOf(node)})`);
  }

  progress(node: string, value: number, max: number): void {
    if (!this.bar) return;
    if (!this.barStarted) this.bar.start(max, 0, { node: `${node} ${this.classOf(node)}` });
    this.barStarted = true;
    this.bar.update(value);
  }

  stop(): void {
    if (this.barStarted) this.bar?.stop();
    this.barStarted = false;
  }
}
