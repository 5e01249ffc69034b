/**
 * One figure reported by a benchmark. `baseline` names the result it is compared with, measured
 * in the same run, and `ratio` is this value divided by that one (above 1 means faster when the
 * unit is a rate).
 */
export interface BenchResult {
  name: string;
  value: number;
  unit: string;
  baseline?: string;
  ratio?: number;
}
