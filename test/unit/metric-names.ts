/** The metric names a PromQL-bearing text (alert rules, a dashboard) refers to, without the histogram series suffixes. */
export function metricNamesIn(text: string): string[] {
  const names = new Set<string>();
  for (const m of text.matchAll(/\b((?:ms2m|temporal)_[a-z0-9_]+)\b/g)) names.add(m[1].replace(/_(bucket|sum|count)$/, ''));
  return [...names].sort();
}
