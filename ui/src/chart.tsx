/**
 * A small uPlot time chart. uPlot draws on a canvas and styles itself through the CSSOM, which
 * the console's Content-Security-Policy allows; its colours come from the stylesheet's custom
 * properties, so light and dark follow the system.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import uPlot from 'uplot';

export interface Line {
  label: string;
  /** A custom property of styles.css: --chart-1, --chart-2. */
  color: string;
  values: (number | null)[];
  /** Mark each value (a ratio's isolated buckets would otherwise not show). */
  points?: boolean;
}

function css(name: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || '#888';
}

function useColorScheme(): boolean {
  const mq = matchMedia('(prefers-color-scheme: dark)');
  const [dark, setDark] = useState(mq.matches);
  useEffect(() => {
    const on = () => setDark(mq.matches);
    mq.addEventListener('change', on);
    return () => mq.removeEventListener('change', on);
  }, []);
  return dark;
}

export function TimeChart(props: { label: string; summary: string; x: number[]; lines: Line[]; format: (v: number) => string; max?: number }) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | undefined>(undefined);
  const dark = useColorScheme();

  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const fg = css('--muted');
    const grid = css('--grid');
    const axis = { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 }, font: '11px system-ui, sans-serif' };
    const u = new uPlot(
      {
        width: Math.max(200, el.clientWidth),
        height: 170,
        legend: { show: true, live: true },
        cursor: { drag: { x: false, y: false } },
        scales: { y: props.max !== undefined ? { range: [0, props.max] } : { range: (_u, _min, max) => [0, max > 0 ? max * 1.1 : 1] } },
        series: [
          { label: 'Time', value: (_u: uPlot, v: number | null) => (v === null ? '—' : new Date(v * 1000).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })) },
          ...props.lines.map((l) => ({
            label: l.label,
            stroke: css(l.color),
            fill: css(`${l.color}-fill`),
            width: 1.5,
            points: { show: l.points ?? false, size: 4 },
            spanGaps: false,
            value: (_u: uPlot, v: number | null) => (v === null ? '—' : props.format(v)),
          })),
        ],
        axes: [axis, { ...axis, size: 64, values: (_u, vals) => vals.map((v) => props.format(v)) }],
      },
      [props.x, ...props.lines.map((l) => l.values)],
      el,
    );
    plot.current = u;
    const ro = new ResizeObserver(() => u.setSize({ width: Math.max(200, el.clientWidth), height: 170 }));
    ro.observe(el);
    return () => {
      ro.disconnect();
      u.destroy();
      plot.current = undefined;
    };
    // A new series or a new theme rebuilds; new data only updates.
  }, [dark, props.lines.length, props.label]);

  useEffect(() => {
    plot.current?.setData([props.x, ...props.lines.map((l) => l.values)]);
  }, [props.x, props.lines]);

  return (
    <figure class="chart">
      <figcaption>{props.label}</figcaption>
      <div ref={box} role="img" aria-label={`${props.label}: ${props.summary}`} />
      <p class="muted small">{props.summary}</p>
    </figure>
  );
}
