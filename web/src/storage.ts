// The browser's localStorage as JSON: preferences kept across visits (pinned columns, the chart
// collapsed, saved views). Storage may be disabled or full; then nothing is remembered.

export function loadPref<T>(key: string, fallback: T): T {
  try {
    const s = localStorage.getItem(key);
    return s === null ? fallback : (JSON.parse(s) as T);
  } catch {
    return fallback;
  }
}

/** Stores a preference; null removes it. */
export function savePref(key: string, value: unknown) {
  try {
    if (value === null) localStorage.removeItem(key);
    else localStorage.setItem(key, JSON.stringify(value));
  } catch {
    /* storage disabled or full */
  }
}
