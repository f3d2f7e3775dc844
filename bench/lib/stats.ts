export interface Stats { min: number; median: number; max: number; runs: number[] }

export function stats(runs: number[]): Stats {
  const s = [...runs].sort((a, b) => a - b);
  return { min: s[0]!, median: s[Math.floor(s.length / 2)]!, max: s[s.length - 1]!, runs };
}
