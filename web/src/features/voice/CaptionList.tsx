// Live captions that follow the call: the list scrolls itself to the newest line as lines arrive
// and grow, unless the counselor scrolled up to reread something; then it stays where they are
// and offers "Jump to newest". The scrolling happens inside the list (its own scrollTop): the old
// anchor sat outside the scrolling list, so it scrolled the page and never the captions.
import { useLayoutEffect, useRef, useState } from "react";

export interface Caption {
  id: string;
  mine: boolean;
  text: string;
}

/** Within this many pixels of the bottom counts as "at the newest line". */
const NEAR_BOTTOM_PX = 24;

export function isNearBottom(el: { scrollTop: number; scrollHeight: number; clientHeight: number }): boolean {
  return el.scrollHeight - el.scrollTop - el.clientHeight <= NEAR_BOTTOM_PX;
}

export function CaptionList({ captions }: { captions: Caption[] }) {
  const list = useRef<HTMLOListElement>(null);
  const [following, setFollowing] = useState(true);
  // A caption grows while it is spoken: follow its text too, not only new lines.
  const last = captions[captions.length - 1];
  const signature = `${captions.length}:${last?.text.length ?? 0}`;
  // The content height when the list last put itself at the end: a list no longer near that end
  // was scrolled up by the counselor, even when its scroll event has not been handled yet (a line
  // that arrives in the same frame as the scroll must not pull the list back down).
  const placedHeight = useRef(0);
  const placeAtEnd = (el: HTMLOListElement) => {
    el.scrollTop = el.scrollHeight;
    placedHeight.current = el.scrollHeight;
  };
  useLayoutEffect(() => {
    const el = list.current;
    if (!el || !following) return;
    if (placedHeight.current - el.scrollTop - el.clientHeight > NEAR_BOTTOM_PX) {
      setFollowing(false);
      return;
    }
    placeAtEnd(el);
  }, [signature, following]);
  const jump = () => {
    const el = list.current;
    if (el) placeAtEnd(el);
    setFollowing(true);
  };
  return (
    <div className="relative">
      <ol
        ref={list}
        // Focusable so keyboard users can scroll it (axe: scrollable-region-focusable).
        // eslint-disable-next-line jsx-a11y/no-noninteractive-tabindex
        tabIndex={0}
        className="flex max-h-80 flex-col gap-2 overflow-y-auto text-sm focus-visible:ring-2 focus-visible:ring-blue-700"
        aria-live="polite"
        aria-label="Live captions"
        data-testid="captions"
        onScroll={(e) => setFollowing(isNearBottom(e.currentTarget))}
      >
        {captions.map((c) => (
          <li key={c.id} className={c.mine ? "ml-4 rounded bg-blue-50 p-2" : "mr-4 rounded bg-slate-100 p-2"}>
            <span className="block text-xs font-semibold text-slate-700">{c.mine ? "You" : "Caller"}</span>
            {c.text}
          </li>
        ))}
      </ol>
      {!following && captions.length > 0 && (
        <div className="sticky bottom-0 mt-2 flex justify-center">
          <button type="button" onClick={jump} className="rounded-full bg-blue-700 px-3 py-1 text-xs font-medium text-white shadow focus-visible:ring-2 focus-visible:ring-blue-700 focus-visible:ring-offset-2">
            Jump to newest <span aria-hidden="true">↓</span>
          </button>
        </div>
      )}
    </div>
  );
}
