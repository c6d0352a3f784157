// The status page's charts: reads /history.json (10-second buckets per account) and draws them
// with uPlot, served by the board itself. Plain browser JavaScript, no build step.
(() => {
  const BUCKET_S = 10;
  const COLORS = {
    completed: '#17803d',
    failed: '#b42318',
    ok: '#2456c8',
    throttled: '#d97706',
    credits: '#7c3aed',
    error: '#b42318',
    learned: '#2456c8',
    configured: '#8a94a6',
    override: '#c2410c',
    backlog: '#0f766e',
    spendHf: '#2456c8',
    spendKeys: '#d97706',
  };

  const CHARTS = [
    {
      title: 'jobs / s',
      series: [
        { label: 'completed', color: COLORS.completed, value: (p) => p.completed / BUCKET_S },
        { label: 'failed', color: COLORS.failed, value: (p) => p.failed / BUCKET_S },
      ],
      counters: true,
    },
    {
      title: 'upstream requests / s',
      series: [
        { label: 'ok', color: COLORS.ok, value: (p) => p.ok / BUCKET_S },
        { label: '429', color: COLORS.throttled, value: (p) => p.throttled / BUCKET_S },
        { label: '402', color: COLORS.credits, value: (p) => p.credits / BUCKET_S },
        { label: 'error', color: COLORS.error, value: (p) => p.error / BUCKET_S },
      ],
      counters: true,
    },
    {
      title: 'rate, requests / s',
      series: [
        { label: 'learned', color: COLORS.learned, value: (p) => p.learnedRate },
        { label: 'configured', color: COLORS.configured, value: (p) => p.configuredRate, dash: [4, 4] },
        { label: 'override', color: COLORS.override, value: (p) => p.overrideRate, dash: [2, 2] },
      ],
    },
    {
      title: 'backlog, jobs',
      series: [{ label: 'queued', color: COLORS.backlog, value: (p) => p.backlog }],
    },
    {
      title: 'spend this month, $',
      money: true,
      series: [
        { label: 'HF', color: COLORS.spendHf, value: (p) => p.spendHf },
        { label: 'keys', color: COLORS.spendKeys, value: (p) => p.spendKeys },
      ],
    },
  ];

  /** Every 10-second bucket from the window's start to now: counters 0 where no worker wrote, gauges null. */
  function grid(points, fromS, toS, chart) {
    const byT = new Map(points.map((p) => [Math.round(p.t / 1000), p]));
    const xs = [];
    const ys = chart.series.map(() => []);
    const first = Math.ceil(fromS / BUCKET_S) * BUCKET_S;
    for (let t = first; t <= toS; t += BUCKET_S) {
      const p = byT.get(t);
      xs.push(t);
      chart.series.forEach((s, i) => {
        const v = p ? s.value(p) : null;
        ys[i].push(v === null || v === undefined ? (chart.counters ? 0 : null) : v);
      });
    }
    return [xs, ...ys];
  }

  /** The window asked for, narrowed to where data exists so that a short run is not a spike at the edge. */
  function xRange(points, fromS, toS) {
    if (points.length === 0) return [fromS, toS];
    const firstS = Math.round(points[0].t / 1000);
    return [Math.max(fromS, Math.min(firstS - 60, toS - 300)), toS];
  }

  /** Room for the longest tick label (small amounts of money have many digits). */
  function labelWidth(_u, values) {
    const longest = Math.max(3, ...(values ?? []).map((v) => String(v).length));
    return longest * 7 + 16;
  }

  function moneyTick(v) {
    if (v === 0) return '0';
    return v >= 1 ? v.toFixed(2) : v.toPrecision(2);
  }

  function draw(container, points, windowFromS, toS) {
    container.replaceChildren();
    const [fromS] = xRange(points, windowFromS, toS);
    let drawn = 0;
    for (const chart of CHARTS) {
      const cell = document.createElement('div');
      cell.className = 'chart';
      container.append(cell);
      const data = grid(points, fromS, toS, chart);
      // The cell's content width (inside its padding): a canvas any wider is clipped at the right,
      // where the newest data is.
      const style = getComputedStyle(cell);
      const inner =
        cell.clientWidth - Number.parseFloat(style.paddingLeft) - Number.parseFloat(style.paddingRight);
      const width = Math.max(160, Math.floor(inner) || 300);
      // uPlot is loaded by the page from /hfq-assets/uplot.js.
      new window.uPlot(
        {
          title: chart.title,
          width,
          height: 150,
          scales: {
            x: { time: true, range: [fromS, toS] },
            y: { range: (_u, _min, max) => [0, max > 0 ? max * 1.1 : 1] },
          },
          legend: { show: true, live: false },
          cursor: { drag: { x: false, y: false } },
          axes: [
            { size: 28, space: 60 },
            chart.money
              ? { size: labelWidth, values: (_u, ticks) => ticks.map(moneyTick) }
              : { size: labelWidth },
          ],
          series: [
            {},
            ...chart.series.map((s) => ({
              label: s.label,
              stroke: s.color,
              width: 1.5,
              spanGaps: true,
              ...(s.dash ? { dash: s.dash } : {}),
              points: { show: false },
            })),
          ],
        },
        data,
        cell,
      );
      drawn += points.filter((p) =>
        chart.series.some((s) => s.value(p) !== null && s.value(p) !== undefined),
      ).length;
    }
    container.dataset.points = String(points.length);
    container.dataset.drawn = String(drawn);
    // For a check that the newest bucket is inside the x range drawn (seconds since the epoch).
    container.dataset.newest = String(points.length > 0 ? Math.round(points[points.length - 1].t / 1000) : 0);
    container.dataset.xmax = String(toS);
  }

  async function main() {
    const hours = Number(new URLSearchParams(location.search).get('hours') ?? '1') || 1;
    // Resolved against the page's origin, never its full address: a page opened as
    // http://user:password@host/status has a base URL with credentials, which fetch refuses.
    const url = new URL(
      `history.json?hours=${encodeURIComponent(hours)}`,
      location.origin + location.pathname,
    );
    const res = await fetch(url, { cache: 'no-store' });
    if (!res.ok) throw new Error(`history.json answered ${res.status}`);
    const history = await res.json();
    const toS = Math.floor(Date.parse(history.generatedAt) / 1000);
    const fromS = toS - history.hours * 3600;
    for (const container of document.querySelectorAll('.charts[data-account]')) {
      draw(container, history.accounts[container.dataset.account] ?? [], fromS, toS);
    }
    document.body.dataset.charts = 'ready';
  }

  main().catch((err) => {
    document.body.dataset.charts = 'error';
    for (const container of document.querySelectorAll('.charts[data-account]')) {
      container.textContent = `charts unavailable: ${err.message}`;
    }
  });
})();
