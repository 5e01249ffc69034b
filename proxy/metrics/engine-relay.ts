/**
 * `run`'s metrics across its engines. The engine runs in a child process that its supervisor
 * replaces when it dies or hands over (cli/supervise.ts), and metrics served by the engine fell
 * back to zero with it, were gone while a new one started, and lost what the supervisor itself
 * knows (an engine started without the SVM's interface is a secondary lost). So the supervisor
 * serves --metrics: on each scrape it asks the running engine for its registry's values over the
 * IPC channel (`answerMetricsRequests` on the engine's side), adds to each counter what the
 * engines before it counted (carried over when one exits, from its last values) and what the
 * supervisor counted (`add`), and writes the Prometheus text itself.
 *
 * Counters never go backwards: the values carried from an engine are the last ones seen, by a
 * scrape or by the poll every POLL_MS, so at least what any scrape reported (what an engine that
 * crashed counted after its last poll is lost). Counters that read a total kept outside the engine
 * (the interfaces' kernel statistics, `absolute`) are not carried. Gauges are the running
 * engine's; between engines only the counters are served, with `colo_proxy_engine_up` 0.
 */

import type { ChildProcess } from 'node:child_process';
import type { MetricObjectWithValues, MetricValue, Registry } from 'prom-client';

/** One metric family as prom-client's `getMetricsAsJSON` gives it (its `type` is typed as an enum but is the string, 'counter' or 'gauge'). */
type MetricFamily = MetricObjectWithValues<MetricValue<string>>;
type Labels = Partial<Record<string, string | number>>;

/** How often the supervisor takes the running engine's values, to carry them on should it crash. */
const POLL_MS = 1000;
/** How long a scrape waits for the engine's answer before it serves its last values. */
const ASK_TIMEOUT_MS = 2000;

interface MetricsRequest { kind: 'metrics?'; id: number }
interface MetricsReply { kind: 'metrics'; id: number; families: MetricFamily[] }

/** Engine side: answers the supervisor's requests for `registry`'s values. */
export function answerMetricsRequests(registry: Registry): void {
  process.on('message', (m: unknown) => {
    if (!isRequest(m)) return;
    void registry.getMetricsAsJSON().then((families: MetricFamily[]) => {
      if (process.connected) process.send?.({ kind: 'metrics', id: m.id, families } satisfies MetricsReply);
    });
  });
  // Listening on the channel keeps the process alive; an engine that failed to start must still exit.
  process.channel?.unref();
}

/** Engine side, as it stops: sends its last values, so that the supervisor carries on from them. */
export async function sendFinalMetrics(registry: Registry): Promise<void> {
  if (!process.connected) return;
  const families: MetricFamily[] = await registry.getMetricsAsJSON();
  await new Promise<void>((resolve) => {
    if (process.send === undefined) resolve();
    else process.send({ kind: 'metrics', id: 0, families } satisfies MetricsReply, () => resolve());
  });
}

function isRequest(m: unknown): m is MetricsRequest {
  return typeof m === 'object' && m !== null && (m as { kind?: unknown }).kind === 'metrics?';
}

function isReply(m: unknown): m is MetricsReply {
  return typeof m === 'object' && m !== null && (m as { kind?: unknown }).kind === 'metrics' && Array.isArray((m as { families?: unknown }).families);
}

/** A series: its family's name and its labels, as one key. */
function seriesKey(name: string, labels: Labels): string {
  return `${name}${JSON.stringify(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))}`;
}

/** Supervisor side: the metrics of the engines one after another (see the module header). */
export class EngineMetricsRelay {
  /** Counter values of the engines gone and of the supervisor's own counts, by series. */
  private readonly carried = new Map<string, { name: string; labels: Labels; value: number }>();
  /** Help and type of every family seen, in the order first seen. */
  private readonly meta = new Map<string, { help: string; type: string }>();
  private engine: ChildProcess | null = null;
  /** The running engine's last values. */
  private latest: MetricFamily[] | null = null;
  /** The last values of the engine that exited last, gauges included. */
  private departed: MetricFamily[] = [];
  private nextId = 0;
  private readonly waiting = new Map<number, (families: MetricFamily[] | null) => void>();
  private poll: NodeJS.Timeout | null = null;

  /** `absolute`: counter families not carried over (see the module header). */
  constructor(private readonly absolute: ReadonlySet<string>) {}

  /** A new engine runs. */
  attach(engine: ChildProcess): void {
    this.engine = engine;
    this.latest = null;
    engine.on('message', (m: unknown) => {
      if (!isReply(m) || engine !== this.engine) return;
      this.remember(m.families);
      this.waiting.get(m.id)?.(m.families);
      this.waiting.delete(m.id);
    });
    this.poll = setInterval(() => void this.ask(), POLL_MS);
    this.poll.unref();
  }

  /** The engine exited: its counters are carried over. */
  detach(): void {
    if (this.poll !== null) clearInterval(this.poll);
    this.poll = null;
    for (const resolve of this.waiting.values()) resolve(null);
    this.waiting.clear();
    for (const f of this.latest ?? []) {
      if (String(f.type) !== 'counter' || this.absolute.has(f.name)) continue;
      for (const v of f.values) this.add(f.name, v.labels, v.value);
    }
    this.departed = this.latest ?? [];
    this.engine = null;
    this.latest = null;
  }

  /** The unlabelled gauge `name` as the engine that exited last left it, or undefined. */
  departedGauge(name: string): number | undefined {
    const f = this.departed.find((d) => d.name === name && String(d.type) === 'gauge');
    return f?.values.find((v) => Object.keys(v.labels).length === 0)?.value;
  }

  /** Counts `n` on a counter series the supervisor knows of (an engine's family). */
  add(name: string, labels: Labels, n: number): void {
    const key = seriesKey(name, labels);
    const c = this.carried.get(key);
    if (c === undefined) this.carried.set(key, { name, labels, value: n });
    else c.value += n;
  }

  /** As prom-client's Registry: served by metrics/http.ts. */
  readonly contentType = 'text/plain; version=0.0.4; charset=utf-8';

  /** The exposition text: the running engine's values (fresh if it answers in time) plus what is carried. */
  async metrics(): Promise<string> {
    const current = this.engine === null ? null : (await this.ask()) ?? this.latest;
    const values = new Map<string, { name: string; labels: Labels; value: number }>();
    for (const f of current ?? []) {
      if (String(f.type) !== 'counter' && String(f.type) !== 'gauge') continue;
      for (const v of f.values) values.set(seriesKey(f.name, v.labels), { name: f.name, labels: v.labels, value: v.value });
    }
    for (const [key, c] of this.carried) {
      const v = values.get(key);
      if (v !== undefined) v.value += c.value;
      else values.set(key, { ...c });
    }
    let out = '';
    for (const [name, { help, type }] of this.meta) {
      if (type === 'gauge' && current === null) continue;
      const lines = [...values.values()].filter((v) => v.name === name).map((v) => `${name}${formatLabels(v.labels)} ${formatValue(v.value)}\n`);
      if (lines.length === 0) continue;
      out += `# HELP ${name} ${help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}\n# TYPE ${name} ${type}\n${lines.join('')}`;
    }
    out += `# HELP colo_proxy_engine_up 1 while a capture engine runs (0 while one is being started again).\n# TYPE colo_proxy_engine_up gauge\ncolo_proxy_engine_up ${current === null ? 0 : 1}\n`;
    return out;
  }

  /** Stops polling (the supervisor is done). */
  close(): void {
    if (this.poll !== null) clearInterval(this.poll);
    this.poll = null;
  }

  /** Asks the running engine for its values; null when it is gone or does not answer in time. */
  private ask(): Promise<MetricFamily[] | null> {
    const engine = this.engine;
    if (engine === null || !engine.connected) return Promise.resolve(null);
    const id = ++this.nextId;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        resolve(null);
      }, ASK_TIMEOUT_MS);
      timer.unref();
      this.waiting.set(id, (families) => {
        clearTimeout(timer);
        resolve(families);
      });
      engine.send({ kind: 'metrics?', id } satisfies MetricsRequest, (e) => {
        if (e === null) return;
        this.waiting.delete(id);
        clearTimeout(timer);
        resolve(null);
      });
    });
  }

  private remember(families: MetricFamily[]): void {
    this.latest = families;
    for (const f of families) if (!this.meta.has(f.name)) this.meta.set(f.name, { help: f.help, type: String(f.type) });
  }
}

function formatLabels(labels: Labels): string {
  const entries = Object.entries(labels);
  if (entries.length === 0) return '';
  return `{${entries.map(([k, v]) => `${k}="${String(v ?? '').replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`).join(',')}}`;
}

function formatValue(v: number): string {
  return Number.isNaN(v) ? 'NaN' : v === Infinity ? '+Inf' : v === -Infinity ? '-Inf' : String(v);
}
