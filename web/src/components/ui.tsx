// Small shared building blocks: buttons, fields, messages, badges. Colours keep WCAG AA contrast.
import clsx from "clsx";
import { useEffect, useId, useRef, type ButtonHTMLAttributes, type InputHTMLAttributes, type ReactNode, type SelectHTMLAttributes, type TextareaHTMLAttributes } from "react";

type Variant = "primary" | "secondary" | "danger" | "ghost";

export function Button({ variant = "primary", className, ...props }: ButtonHTMLAttributes<HTMLButtonElement> & { variant?: Variant }) {
  return (
    <button
      type="button"
      {...props}
      className={clsx(
        "inline-flex items-center gap-2 rounded-md px-3 py-2 text-sm font-medium focus:outline-none focus-visible:ring-2 focus-visible:ring-offset-2 focus-visible:ring-blue-700 disabled:cursor-not-allowed disabled:opacity-60",
        variant === "primary" && "bg-blue-700 text-white hover:bg-blue-800",
        variant === "secondary" && "border border-slate-400 bg-white text-slate-900 hover:bg-slate-100",
        variant === "danger" && "bg-red-700 text-white hover:bg-red-800",
        variant === "ghost" && "text-blue-800 hover:bg-blue-50",
        className,
      )}
    />
  );
}

export function Field({ label, hint, children }: { label: string; hint?: string; children: (id: string) => ReactNode }) {
  const id = useId();
  return (
    <div className="flex flex-col gap-1">
      <label htmlFor={id} className="text-sm font-medium text-slate-800">
        {label}
      </label>
      {children(id)}
      {hint && <p className="text-xs text-slate-600">{hint}</p>}
    </div>
  );
}

const inputClass = "rounded-md border border-slate-400 bg-white px-3 py-2 text-sm focus:border-blue-700 focus:outline-none focus:ring-2 focus:ring-blue-700";

export function TextInput({ label, hint, ...props }: InputHTMLAttributes<HTMLInputElement> & { label: string; hint?: string }) {
  return <Field label={label} hint={hint}>{(id) => <input id={id} className={inputClass} {...props} />}</Field>;
}

export function TextArea({ label, hint, ...props }: TextareaHTMLAttributes<HTMLTextAreaElement> & { label: string; hint?: string }) {
  return <Field label={label} hint={hint}>{(id) => <textarea id={id} className={inputClass} rows={4} {...props} />}</Field>;
}

export function Select({ label, hint, children, ...props }: SelectHTMLAttributes<HTMLSelectElement> & { label: string; hint?: string }) {
  return (
    <Field label={label} hint={hint}>
      {(id) => (
        <select id={id} className={inputClass} {...props}>
          {children}
        </select>
      )}
    </Field>
  );
}

export function ErrorNote({ error }: { error: unknown }) {
  if (!error) return null;
  const message = error instanceof Error ? error.message : String(error);
  return (
    <p role="alert" className="rounded-md border border-red-300 bg-red-50 px-3 py-2 text-sm text-red-900">
      {message}
    </p>
  );
}

export function Notice({ children, tone = "info" }: { children: ReactNode; tone?: "info" | "success" | "warning" }) {
  return (
    <div
      role="status"
      className={clsx(
        "rounded-md border px-3 py-2 text-sm",
        tone === "info" && "border-blue-300 bg-blue-50 text-blue-950",
        tone === "success" && "border-green-300 bg-green-50 text-green-950",
        tone === "warning" && "border-amber-300 bg-amber-50 text-amber-950",
      )}
    >
      {children}
    </div>
  );
}

export function Spinner({ label }: { label: string }) {
  return (
    <span role="status" className="inline-flex items-center gap-2 text-sm text-slate-700">
      <span aria-hidden className="h-4 w-4 animate-spin rounded-full border-2 border-slate-400 border-t-blue-700" />
      {label}
    </span>
  );
}

export function Badge({ children, tone = "slate" }: { children: ReactNode; tone?: "slate" | "green" | "amber" | "red" | "blue" }) {
  return (
    <span
      className={clsx(
        "inline-block rounded-full px-2 py-0.5 text-xs font-medium",
        tone === "slate" && "bg-slate-200 text-slate-900",
        tone === "green" && "bg-green-100 text-green-900",
        tone === "amber" && "bg-amber-100 text-amber-900",
        tone === "red" && "bg-red-100 text-red-900",
        tone === "blue" && "bg-blue-100 text-blue-900",
      )}
    >
      {children}
    </span>
  );
}

export function Card({ title, children, actions }: { title?: string; children: ReactNode; actions?: ReactNode }) {
  return (
    <section className="rounded-lg border border-slate-300 bg-white p-4 shadow-sm">
      {(title || actions) && (
        <div className="mb-3 flex items-center justify-between gap-2">
          {title && <h2 className="text-lg font-semibold">{title}</h2>}
          {actions}
        </div>
      )}
      {children}
    </section>
  );
}

const APP = "Proto Trainer";

/**
 * After each client-side navigation, moves the focus to the new page's h1 (in `#main`) once it is
 * shown, so a screen reader announces the page; the focus would otherwise stay on the link
 * clicked or fall to the body. A page that already put the focus in its own content (a reply
 * box) keeps it. Lazy pages and data arrive later, so it waits for a visible h1 (up to 5 s).
 */
export function useFocusHeadingOnNavigation(navigationKey: string) {
  useEffect(() => {
    let frame = 0;
    const until = performance.now() + 5000;
    const tryFocus = () => {
      const main = document.getElementById("main");
      const h1 = main?.querySelector<HTMLElement>("h1");
      if (main && h1 && h1.getClientRects().length > 0) {
        if (!main.contains(document.activeElement) || document.activeElement === main) h1.focus({ preventScroll: true });
        return;
      }
      if (performance.now() < until) frame = requestAnimationFrame(tryFocus);
    };
    frame = requestAnimationFrame(tryFocus);
    return () => cancelAnimationFrame(frame);
  }, [navigationKey]);
}

/** The tab's title for pages without a `PageTitle` (sign-in): "<page> · Proto Trainer". */
export function useDocumentTitle(title: string) {
  useEffect(() => {
    document.title = `${title} · ${APP}`;
  }, [title]);
}

/**
 * The page's h1. It names the browser tab after itself ("Sessions · Proto Trainer", following
 * the text as data fills it in); `useFocusHeadingOnNavigation` gives it the focus.
 */
export function PageTitle({ children, actions }: { children: ReactNode; actions?: ReactNode }) {
  const ref = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    const h1 = ref.current;
    if (!h1) return;
    const name = () => {
      document.title = `${h1.textContent?.trim() || APP} · ${APP}`;
    };
    name();
    const observer = new MutationObserver(name);
    observer.observe(h1, { subtree: true, characterData: true, childList: true });
    return () => observer.disconnect();
  }, []);
  return (
    <div className="mb-4 flex flex-wrap items-center justify-between gap-2">
      <h1 ref={ref} tabIndex={-1} className="text-2xl font-bold focus:outline-none">{children}</h1>
      {actions && <div className="flex gap-2">{actions}</div>}
    </div>
  );
}

export function Tabs<T extends string>({ value, options, onChange, label }: { value: T; options: { value: T; label: string }[]; onChange: (v: T) => void; label: string }) {
  return (
    <div role="tablist" aria-label={label} className="mb-3 flex gap-1 border-b border-slate-300">
      {options.map((o) => (
        <button
          key={o.value}
          role="tab"
          type="button"
          aria-selected={value === o.value}
          onClick={() => onChange(o.value)}
          className={clsx(
            "-mb-px border-b-2 px-3 py-2 text-sm font-medium focus:outline-none focus-visible:ring-2 focus-visible:ring-blue-700",
            value === o.value ? "border-blue-700 text-blue-800" : "border-transparent text-slate-700 hover:text-slate-900",
          )}
        >
          {o.label}
        </button>
      ))}
    </div>
  );
}
