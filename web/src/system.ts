// System metrics: the CPU, memory and GPU series every job records under "system/" (sampled by
// its in-job side, python/foundations/_system.py). They are ordinary metrics, shown after the
// job's own so that they never push the user's metrics out of view.

export const isSystemMetric = (key: string) => key.startsWith('system/');

/** The keys with the user's own metrics first and the system ones after, each in its order. */
export const userMetricsFirst = (keys: string[]) => [...keys.filter((k) => !isSystemMetric(k)), ...keys.filter(isSystemMetric)];

/**
 * The metrics charted by default: the first n of the user's own, then the system series but the
 * peaks (which exist to sort the jobs table by; their curve repeats the series they follow).
 */
export const defaultMetrics = (keys: string[], n = 6): string[] => [
  ...keys.filter((k) => !isSystemMetric(k)).slice(0, n),
  ...keys.filter((k) => isSystemMetric(k) && !k.split('/').pop()!.startsWith('peak_')),
];
