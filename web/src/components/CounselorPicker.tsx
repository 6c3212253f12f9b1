// Type-ahead over the account's counselors (`GET /api/users?role=counselor&q=`), picking one or
// many; chosen counselors show as removable chips. Built on Downshift's `useCombobox` (the ARIA
// 1.2 combobox pattern, maintained upstream) instead of hand-written keyboard and ARIA code: focus
// stays in the input while arrow keys, Home, End and Page keys move a highlight through the list,
// `aria-activedescendant` names the highlighted option (so a screen reader reads each one as it
// is highlighted), and the highlighted option is scrolled into view.
// Downshift is a single-select combobox; the multiple picker keeps its `selectedItem` at null and
// adds each pick to `value` (Downshift's documented multiple-selection pattern), so the list
// stays open, emptied of the picked counselor, for the next one.
import { useQuery } from "@tanstack/react-query";
import { useCombobox, type UseComboboxState, type UseComboboxStateChangeOptions } from "downshift";
import { useEffect, useState } from "react";
import { api, call, type Schemas } from "@/api/client";
import { keys } from "@/api/keys";

type User = Schemas["User"];
const T = useCombobox.stateChangeTypes;

export function CounselorPicker({ value, onChange, multiple = true, label = "Counselors" }: { value: User[]; onChange: (users: User[]) => void; multiple?: boolean; label?: string }) {
  const [q, setQ] = useState("");
  // Controlled so the search runs only while the list is open.
  const [isOpen, setIsOpen] = useState(false);
  const query = { role: "counselor", q: q || undefined, limit: 20 } as const;
  const found = useQuery({
    queryKey: keys.users.list(query),
    queryFn: () => call(api.GET("/api/users", { params: { query } })),
    enabled: isOpen,
  });
  const options = (found.data ?? []).filter((u) => !value.some((v) => v.id === u.id));

  const stateReducer = (state: UseComboboxState<User>, { type, changes }: UseComboboxStateChangeOptions<User>): Partial<UseComboboxState<User>> => {
    switch (type) {
      case T.InputKeyDownEnter:
      case T.ItemClick:
        // A pick empties the search; the multiple picker stays open on the first remaining option.
        if (changes.selectedItem) return { ...changes, inputValue: "", isOpen: multiple, highlightedIndex: multiple ? 0 : -1 };
        return changes;
      case T.InputBlur:
        // Downshift picks the highlighted option when focus leaves; here leaving picks nobody.
        return { ...changes, selectedItem: state.selectedItem, inputValue: state.inputValue };
      case T.InputClick:
        // The list opens on focus already; a click on the input must not close it again.
        return { ...changes, isOpen: true, highlightedIndex: state.isOpen ? state.highlightedIndex : changes.highlightedIndex };
      default:
        return changes;
    }
  };

  const { getLabelProps, getInputProps, getMenuProps, getItemProps, highlightedIndex, setHighlightedIndex, openMenu } = useCombobox<User>({
    items: options,
    itemToString: (u) => u?.displayName ?? "",
    itemToKey: (u) => u?.id,
    selectedItem: null,
    inputValue: q,
    isOpen,
    defaultHighlightedIndex: 0,
    stateReducer,
    onInputValueChange: ({ inputValue }) => setQ(inputValue),
    onIsOpenChange: ({ isOpen }) => setIsOpen(!!isOpen),
    onSelectedItemChange: ({ selectedItem }) => {
      if (selectedItem) onChange(multiple ? [...value, selectedItem] : [selectedItem]);
    },
  });

  // The answers arrive after the list opened (or the search changed): highlight the first one, so
  // Enter picks it, as before the library.
  const optionKey = options.map((u) => u.id).join(",");
  useEffect(() => {
    if (isOpen && optionKey) setHighlightedIndex(0);
  }, [isOpen, optionKey, setHighlightedIndex]);

  const expanded = isOpen && options.length > 0;
  const current = expanded && highlightedIndex >= 0 && highlightedIndex < options.length ? highlightedIndex : -1;
  const inputProps = getInputProps({
    placeholder: "Type a name or e-mail",
    className: "w-full rounded-md border border-slate-400 px-3 py-2 text-sm focus:outline-none focus:ring-2 focus:ring-blue-700",
    onFocus: () => {
      if (!isOpen) openMenu();
    },
  });
  return (
    <div className="flex flex-col gap-1">
      <label {...getLabelProps({ className: "text-sm font-medium text-slate-800" })}>{label}</label>
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
        {/* While the answers load the list is empty: name no option that is not there. */}
        <input {...inputProps} role="combobox" aria-controls={inputProps["aria-controls"]} aria-expanded={expanded} aria-activedescendant={current >= 0 ? inputProps["aria-activedescendant"] : undefined} />
        {/* Downshift needs the list element mounted always; hidden while there is nothing to show. */}
        <ul {...getMenuProps({ "aria-label": label, className: `absolute z-10 mt-1 max-h-60 w-full overflow-auto rounded-md border border-slate-300 bg-white shadow ${expanded ? "" : "hidden"}` })}>
          {expanded &&
            options.map((u, index) => (
              <li key={u.id} {...getItemProps({ item: u, index, className: `cursor-pointer px-3 py-2 text-sm ${index === current ? "bg-blue-100" : ""}` })}>
                {u.displayName} <span className="text-slate-700">{u.email}</span>
              </li>
            ))}
        </ul>
        {isOpen && q && found.isSuccess && options.length === 0 && <p className="mt-1 text-sm text-slate-700" role="status">No counselor matches “{q}”.</p>}
      </div>
    </div>
  );
}
