// Summarises a .cpuprofile (node --cpu-prof): self time by function and by source area.
// usage: node bench/probes/cpu-top.mjs FILE.cpuprofile [N=25]
import fs from 'node:fs';
const prof = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const n = Number(process.argv[3] ?? 25);
const byId = new Map(prof.nodes.map((x) => [x.id, x]));
const self = new Map();
const dt = prof.timeDeltas;
for (let i = 0; i < prof.samples.length; i++) self.set(prof.samples[i], (self.get(prof.samples[i]) ?? 0) + (dt[i] ?? 0));
const total = [...self.values()].reduce((a, b) => a + b, 0);
const fn = new Map();
const area = new Map();
const areaOf = (url) => {
  if (!url) return '(native/gc/idle)';
  const m = /node-core\/([a-z-]+)\//.exec(url);
  if (m) return 'node-core/' + m[1];
  if (url.includes('node_modules')) return 'node_modules/' + (/node_modules\/((@[^/]+\/)?[^/]+)/.exec(url)?.[1] ?? '?');
  if (url.startsWith('node:')) return url.replace(/^node:internal\//, 'node:').split('/').slice(0, 2).join('/');
  return url;
};
for (const [id, t] of self) {
  const node = byId.get(id);
  const cf = node.callFrame;
  const key = `${cf.functionName || '(anonymous)'} ${(cf.url || '').replace(/^.*\/(node-core|node_modules)\//, '$1/')}:${cf.lineNumber + 1}`;
  fn.set(key, (fn.get(key) ?? 0) + t);
  const a = areaOf(cf.url);
  area.set(a, (area.get(a) ?? 0) + t);
}
const pct = (t) => ((100 * t) / total).toFixed(1).padStart(5) + '%';
console.log(`total ${(total / 1e6).toFixed(2)} s sampled`);
console.log('\nby area');
for (const [k, t] of [...area].sort((a, b) => b[1] - a[1]).slice(0, 15)) console.log(pct(t), k);
console.log('\nby function (self)');
for (const [k, t] of [...fn].sort((a, b) => b[1] - a[1]).slice(0, n)) console.log(pct(t), k);
