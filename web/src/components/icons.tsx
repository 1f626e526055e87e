// Inline SVG icons (no icon font to download).
import type { JSX, SVGAttributes } from 'preact';

type P = SVGAttributes<SVGSVGElement> & { size?: number };

function Svg({ size = 16, children, ...rest }: P & { children: JSX.Element | JSX.Element[] }) {
  return (
    <svg width={size} height={size} viewBox="0 0 16 16" fill="none" stroke="currentColor" stroke-width="1.6"
      stroke-linecap="round" stroke-linejoin="round" aria-hidden="true" {...rest}>
      {children}
    </svg>
  );
}

export const IconCheck = (p: P) => <Svg {...p}><path d="M3.5 8.5l3 3 6-7" /></Svg>;
export const IconX = (p: P) => <Svg {...p}><path d="M4.5 4.5l7 7M11.5 4.5l-7 7" /></Svg>;
export const IconClock = (p: P) => <Svg {...p}><circle cx="8" cy="8" r="6" /><path d="M8 4.8V8l2.2 1.6" /></Svg>;
export const IconStop = (p: P) => <Svg {...p}><rect x="4.5" y="4.5" width="7" height="7" rx="1" /></Svg>;
export const IconPlay = (p: P) => <Svg {...p}><path d="M5.5 3.8v8.4L12 8z" /></Svg>;
export const IconCopy = (p: P) => <Svg {...p}><rect x="5.5" y="5.5" width="7.5" height="7.5" rx="1.5" /><path d="M10.5 5.5V4a1.5 1.5 0 00-1.5-1.5H4A1.5 1.5 0 002.5 4v5A1.5 1.5 0 004 10.5h1.5" /></Svg>;
export const IconTrash = (p: P) => <Svg {...p}><path d="M3 4.5h10M6.5 4.5V3h3v1.5M4.5 4.5l.6 8.5h5.8l.6-8.5M7 7v4M9 7v4" /></Svg>;
export const IconFilter = (p: P) => <Svg {...p}><path d="M2.5 3.5h11l-4.2 5v4l-2.6 1.2V8.5z" /></Svg>;
export const IconColumns = (p: P) => <Svg {...p}><rect x="2.5" y="3" width="11" height="10" rx="1.5" /><path d="M6.2 3v10M9.8 3v10" /></Svg>;
export const IconChart = (p: P) => <Svg {...p}><path d="M2.5 13.5h11M3.5 11l3-4 2.5 2.5 4-5.5" /></Svg>;
export const IconDownload = (p: P) => <Svg {...p}><path d="M8 2.5v8M4.8 7.5L8 10.7l3.2-3.2M3 13.5h10" /></Svg>;
export const IconPlus = (p: P) => <Svg {...p}><path d="M8 3v10M3 8h10" /></Svg>;
export const IconCompare = (p: P) => <Svg {...p}><path d="M5 2.5v11M11 2.5v11M2.5 6h5M8.5 10h5" /></Svg>;
export const IconSearch = (p: P) => <Svg {...p}><circle cx="7" cy="7" r="4.5" /><path d="M10.5 10.5l3 3" /></Svg>;
export const IconFile = (p: P) => <Svg {...p}><path d="M4 1.8h5l3 3v9.4H4z" /><path d="M9 1.8v3h3" /></Svg>;
export const IconImage = (p: P) => <Svg {...p}><rect x="2" y="3" width="12" height="10" rx="1.5" /><circle cx="5.8" cy="6.5" r="1.2" /><path d="M2.5 12l3.8-3.5 2.7 2.3 2-1.8 2.5 2.5" /></Svg>;
export const IconAudio = (p: P) => <Svg {...p}><path d="M2.5 6v4h2.5l3.5 3V3L5 6zM11 5.5a3.5 3.5 0 010 5M12.8 3.8a6 6 0 010 8.4" /></Svg>;
export const IconQueue = (p: P) => <Svg {...p}><path d="M2.5 4h11M2.5 8h11M2.5 12h7" /></Svg>;
export const IconFolder = (p: P) => <Svg {...p}><path d="M2 4.5A1.5 1.5 0 013.5 3h3l1.5 1.5h4.5A1.5 1.5 0 0114 6v5.5a1.5 1.5 0 01-1.5 1.5h-9A1.5 1.5 0 012 11.5z" /></Svg>;
export const IconChevron = (p: P) => <Svg {...p}><path d="M6 3.5L10.5 8 6 12.5" /></Svg>;
export const IconSortUp = (p: P) => <Svg {...p}><path d="M8 12.5v-9M4.5 7L8 3.5 11.5 7" /></Svg>;
export const IconSortDown = (p: P) => <Svg {...p}><path d="M8 3.5v9M4.5 9L8 12.5 11.5 9" /></Svg>;
export const IconTag = (p: P) => <Svg {...p}><path d="M2.5 2.5h5.2l6 6-5.2 5.2-6-6z" /><circle cx="5.3" cy="5.3" r="1" /></Svg>;
export const IconRefresh = (p: P) => <Svg {...p}><path d="M13 8a5 5 0 11-1.5-3.6M13 2.8v2.6h-2.6" /></Svg>;

export function Spinner({ size = 14 }: { size?: number }) {
  return (
    <svg class="spin" width={size} height={size} viewBox="0 0 16 16" aria-hidden="true">
      <circle cx="8" cy="8" r="6" fill="none" stroke="currentColor" stroke-opacity=".25" stroke-width="2" />
      <path d="M14 8a6 6 0 00-6-6" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" />
    </svg>
  );
}

/** The Atlas mark (also the favicon). */
export function Logo({ size = 26 }: { size?: number }) {
  return (
    <svg width={size} height={size} viewBox="0 0 32 32" aria-hidden="true">
      <rect width="32" height="32" rx="8" fill="#4f6bed" />
      <path d="M9 23l7-14 7 14M12 18h8" stroke="white" stroke-width="3" fill="none" stroke-linecap="round" stroke-linejoin="round" />
    </svg>
  );
}
export const IconPin = (p: P) => <Svg {...p}><path d="M6 2.5h4M6.8 2.5v4L4.5 9h7L9.2 6.5v-4M8 9v4.5" /></Svg>;
export const IconKeyboard = (p: P) => <Svg {...p}><rect x="1.5" y="4" width="13" height="8" rx="1.5" /><path d="M4 6.5h.01M6.5 6.5h.01M9 6.5h.01M11.5 6.5h.01M5 9.5h6" /></Svg>;
