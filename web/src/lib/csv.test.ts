import { describe, expect, it } from "vitest";
import { toCsv } from "./csv";

describe("toCsv", () => {
  it("quotes what needs it and defuses formulas", () => {
    expect(toCsv(["a", "b"], [["x, y", 'say "hi"'], ["=SUM(A1)", null], [-3, 4]])).toBe(
      'a,b\r\n"x, y","say ""hi"""\r\n\'=SUM(A1),\r\n\'-3,4\r\n',
    );
  });
});
