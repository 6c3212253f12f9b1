import { act, cleanup, fireEvent, render, screen } from "@testing-library/react";
import { afterEach, describe, expect, it } from "vitest";
import { CaptionList, isNearBottom, type Caption } from "./CaptionList";

// jsdom lays nothing out: give the list a fixed box whose content height grows with its lines.
function box(el: HTMLElement, lines: () => number) {
  Object.defineProperty(el, "clientHeight", { configurable: true, get: () => 300 });
  Object.defineProperty(el, "scrollHeight", { configurable: true, get: () => lines() * 100 });
}

const lines = (n: number): Caption[] => Array.from({ length: n }, (_, i) => ({ id: String(i), mine: i % 2 === 1, text: `line ${i}` }));

afterEach(cleanup);

describe("CaptionList", () => {
  it("knows when the list is at its newest line", () => {
    expect(isNearBottom({ scrollTop: 700, scrollHeight: 1000, clientHeight: 300 })).toBe(true);
    expect(isNearBottom({ scrollTop: 680, scrollHeight: 1000, clientHeight: 300 })).toBe(true);
    expect(isNearBottom({ scrollTop: 500, scrollHeight: 1000, clientHeight: 300 })).toBe(false);
  });

  it("follows new lines inside the list, stays put when the counselor scrolled up, and jumps back", () => {
    let n = 5;
    const { rerender } = render(<CaptionList captions={lines(n)} />);
    const list = screen.getByRole("list", { name: "Live captions" });
    box(list, () => n);
    expect(list.getAttribute("aria-live")).toBe("polite");

    n = 10;
    rerender(<CaptionList captions={lines(n)} />);
    expect(list.scrollTop).toBe(1000); // followed the newest line
    expect(screen.queryByRole("button", { name: /Jump to newest/ })).toBeNull();

    // The counselor scrolls up to reread.
    act(() => {
      list.scrollTop = 200;
      fireEvent.scroll(list);
    });
    n = 12;
    rerender(<CaptionList captions={lines(n)} />);
    expect(list.scrollTop).toBe(200); // not pulled away
    const jump = screen.getByRole("button", { name: /Jump to newest/ });

    fireEvent.click(jump);
    expect(list.scrollTop).toBe(1200);
    expect(screen.queryByRole("button", { name: /Jump to newest/ })).toBeNull();

    // Following again: a caption that grows keeps the list at the bottom.
    n = 13;
    rerender(<CaptionList captions={[...lines(12), { id: "12", mine: false, text: "a longer line" }]} />);
    expect(list.scrollTop).toBe(1300);
  });

  it("stops following when the scroll up and a new line land in the same frame", () => {
    let n = 5;
    const { rerender } = render(<CaptionList captions={lines(n)} />);
    const list = screen.getByRole("list", { name: "Live captions" });
    box(list, () => n);
    n = 6;
    rerender(<CaptionList captions={lines(n)} />);
    expect(list.scrollTop).toBe(600);
    // Scrolled up, and the next line arrives before the browser fires the scroll event.
    list.scrollTop = 0;
    n = 7;
    rerender(<CaptionList captions={lines(n)} />);
    expect(list.scrollTop).toBe(0);
    expect(screen.getByRole("button", { name: /Jump to newest/ })).toBeTruthy();
  });
});
