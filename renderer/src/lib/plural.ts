/** "1 key", "2 keys", "1,000 keys": counts read as English, with the locale's digit grouping. */
export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n.toLocaleString()} ${n === 1 ? one : many}`;
}
