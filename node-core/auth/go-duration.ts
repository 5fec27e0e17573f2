// Go's time.ParseDuration, because etcd parses the JWT `ttl=` option with it
// and accepts exactly its syntax ("5m", "1h30m", "1.5s", "300ms", "0").
const UNITS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  'µs': 1e-3,
  'μs': 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/** Milliseconds (possibly fractional); throws an Error with Go's message on bad input. */
export function parseGoDuration(s: string): number {
  const orig = s;
  const fail = (why: string): never => {
    throw new Error(`time: ${why} ${JSON.stringify(orig)}`);
  };
  let neg = false;
  if (s.startsWith('-') || s.startsWith('+')) {
    neg = s[0] === '-';
    s = s.slice(1);
  }
  if (s === '0') return 0;
  if (s === '') fail('invalid duration');
  let total = 0;
  while (s !== '') {
    const m = /^(\d*)(?:\.(\d*))?/.exec(s)!;
    const whole = m[1];
    const frac = m[2];
    if (whole === '' && (frac === undefined || frac === '')) fail('invalid duration');
    s = s.slice(m[0].length);
    const u = /^[^\d.]+/.exec(s);
    if (!u) fail('missing unit in duration');
    const unit = u![0];
    const scale = UNITS[unit];
    if (scale === undefined) throw new Error(`time: unknown unit ${JSON.stringify(unit)} in duration ${JSON.stringify(orig)}`);
    s = s.slice(unit.length);
    total += Number(`${whole || '0'}.${frac || '0'}`) * scale;
  }
  return neg ? -total : total;
}
