// The one typed API client: every call goes through `api`, whose paths, bodies and answers are
// the generated `paths` type (schema.ts, from web/openapi.json), so a renamed field breaks the
// build, not the page.
import createClient, { type Middleware } from "openapi-fetch";
import { fieldLabel } from "./labels";
import type { components, paths } from "./schema";

export type Schemas = components["schemas"];

let csrfToken: string | null = null;

/** Remembers the CSRF token from sign-in or `GET /api/me`; sent on every state-changing call. */
export function setCsrfToken(token: string | null) {
  csrfToken = token;
}

const csrf: Middleware = {
  onRequest({ request }) {
    if (request.method !== "GET" && request.method !== "HEAD" && csrfToken) {
      request.headers.set("x-csrf-token", csrfToken);
    }
    return request;
  },
};

export const api = createClient<paths>({ baseUrl: "", credentials: "same-origin" });
api.use(csrf);

/** An error answer from the API, carrying its words for the page to show. */
export class ApiError extends Error {
  constructor(
    public status: number,
    public body: Partial<Schemas["ErrorBody"]> | undefined,
  ) {
    super(describe(status, body));
  }
}

// A validation answer's message repeats its fields by API name ("title: must be …"); people read
// the fields by the form's label instead, one sentence each.
function describe(status: number, body: Partial<Schemas["ErrorBody"]> | undefined): string {
  if (body?.fields?.length) return body.fields.map((f) => `${fieldLabel(f.field)}: ${f.message}.`.replace(/\.\.$/, ".")).join(" ");
  return body?.message ?? `The server answered ${status}.`;
}

/** Unwraps an openapi-fetch result: the data, or an `ApiError` with the server's message. */
export async function call<T>(
  promise: Promise<{ data?: T; error?: unknown; response: Response }>,
): Promise<T> {
  let result;
  try {
    result = await promise;
  } catch (e) {
    throw new Error(`Could not reach the server: ${e instanceof Error ? e.message : String(e)}`);
  }
  const { data, error, response } = result;
  if (!response.ok) {
    throw new ApiError(response.status, (error ?? undefined) as Partial<Schemas["ErrorBody"]> | undefined);
  }
  return data as T;
}

/**
 * A file as the multipart form the upload routes take (a `file` field), for `api.POST`'s body:
 * openapi-fetch sends a FormData body as it is (the browser writes the boundary), so an upload
 * goes through the same typed client, its path, answer and errors checked like any other call.
 * FormData is not the schema's `FileUpload` object to TypeScript, hence the one cast here.
 */
export function fileForm(file: File): Schemas["FileUpload"] {
  const form = new FormData();
  form.append("file", file);
  return form as unknown as Schemas["FileUpload"];
}
