// Type-ahead over the account's counselors (`GET /api/users?role=counselor&q=`), picking one or
// many; chosen counselors show as removable chips. The ARIA 1.2 combobox pattern: focus stays in
// the input while arrow keys move a highlight through the list, and `aria-activedescendant`
// names the highlighted option, so a screen reader reads each one as it is highlighted (before,
// the highlight was only a colour). The highlighted option is scrolled into view.
import { useQuery } from "@tanstack/react-query";
import { useEffect, useId, useState } from "react";
import { api, call, type Schemas } from "@/api/client";
import { keys } from "@/api/keys";

type User = Schemas["User"];

export function CounselorPicker({ value, onChange, multiple = true, label = "Counselors" }: { value: User[]; onChange: (users: User[]) => void; multiple?: boolean; label?: string }) {
  const id = useId();
  const [q, setQ] = useState("");
  const [open, setOpen] = useState(false);
  const [active, setActive] = useState(0);
  const query = { role: "counselor", q: q || undefined, limit: 20 } as const;
  const found = useQuery({
    queryKey: keys.users.list(query),
    queryFn: () => call(api.GET("/api/users", { params: { query } })),
    enabled: open,
  });
  const options = (found.data ?? []).filter((u) => !value.some((v) => v.id === u.id));
  const listId = `${id}-list`;
  const optionId = (i: number) => `${id}-option-${i}`;
  const expanded = open && options.length > 0;
  const current = expanded ? Math.min(active, options.length - 1) : -1;
  useEffect(() => {
    if (current >= 0) document.getElementById(`${id}-option-${current}`)?.scrollIntoView?.({ block: "nearest" });
  }, [current, id]);
  const pick = (u: User) => {
    onChange(multiple ? [...value, u] : [u]);
    setQ("");
    setActive(0);
  };
  return (
    <div className="flex flex-col gap-1">
      <label htmlFor={id} className="text-sm font-medium text-slate-800">{label}</label>
      {value.length > 0 && (
        <ul className="flex flex-wrap gap-1" aria-label={`Chosen ${label.toLowerCase()}`}>
          {value.map((u) => (
            <li key={u.id} className="flex items-center gap-1 rounded-full bg-blue-100 px-2 py-0.5 text-sm text-blue-950">
              {u.displayName}
              <button type="button" aria-label={`Remove ${u.displayName}`} className="rounded-full px-1 hover:bg-blue-200" onClick={() => onChange(value.filter((v) => v.id !== u.id))}>×</button>
            </li>
          ))}
        </ul>
      )}
      <div className="relative">
        <input
          id={id}
          role="combobox"
          aria-expanded={expanded}
          aria-controls={listId}
          aria-autocomplete="list"
          aria-activedescendant={current >= 0 ? optionId(current) : undefined}
          autoComplete="off"
          placeholder="Type a name or e-mail"
          className="w-full rounded-md border border-slate-400 px-3 py-2 text-sm focus:outline-none focus:ring-2 focus:ring-blue-700"
          value={q}
          onChange={(e) => {
            setQ(e.target.value);
            setOpen(true);
            setActive(0);
          }}
          onFocus={() => setOpen(true)}
          onBlur={() => setTimeout(() => setOpen(false), 150)}
          onKeyDown={(e) => {
            if (e.key === "ArrowDown") {
              e.preventDefault();
              if (!open) setOpen(true);
              else setActive((a) => Math.min(a + 1, options.length - 1));
            }
            if (e.key === "ArrowUp") { e.preventDefault(); setActive((a) => Math.max(a - 1, 0)); }
            if (expanded && e.key === "Home") { e.preventDefault(); setActive(0); }
            if (expanded && e.key === "End") { e.preventDefault(); setActive(options.length - 1); }
            if (e.key === "Enter" && current >= 0) { e.preventDefault(); pick(options[current]!); }
            if (e.key === "Escape") setOpen(false);
          }}
        />
        {expanded && (
          <ul id={listId} role="listbox" aria-label={label} className="absolute z-10 mt-1 max-h-60 w-full overflow-auto rounded-md border border-slate-300 bg-white shadow">
            {options.map((u, i) => (
              <li
                key={u.id}
                id={optionId(i)}
                role="option"
                aria-selected={i === current}
                className={`cursor-pointer px-3 py-2 text-sm ${i === current ? "bg-blue-100" : ""}`}
                onMouseDown={(e) => { e.preventDefault(); pick(u); }}
              >
                {u.displayName} <span className="text-slate-700">{u.email}</span>
              </li>
            ))}
          </ul>
        )}
        {open && q && found.isSuccess && options.length === 0 && <p className="mt-1 text-sm text-slate-700" role="status">No counselor matches “{q}”.</p>}
      </div>
    </div>
  );
}
