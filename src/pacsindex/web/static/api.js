// Talks to the JSON API: sends the CSRF token with every change, marks background polls (they do not
// keep an idle session alive), and turns error answers into ApiError with the server's sentence.

let csrfToken = null;
let signedOut = () => {};

export class ApiError extends Error {
  constructor(status, detail, retryAfter = null) {
    super(detail);
    this.status = status;
    this.retryAfter = retryAfter;
  }
}

export function setCsrfToken(token) {
  csrfToken = token;
}

// Called with the server's message whenever a request finds the session gone (idle timeout, signed out).
export function onSignedOut(callback) {
  signedOut = callback;
}

export function query(params) {
  const qs = new URLSearchParams();
  for (const [key, value] of Object.entries(params || {})) {
    if (value !== undefined && value !== null && value !== "") qs.set(key, String(value));
  }
  const text = qs.toString();
  return text ? `?${text}` : "";
}

export async function api(path, { method = "GET", body, params, background = false } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && csrfToken) headers["X-CSRF-Token"] = csrfToken;
  if (background) headers["X-Background"] = "1";
  let response;
  try {
    response = await fetch(path + query(params), {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      cache: "no-store",
    });
  } catch {
    throw new ApiError(0, "The server cannot be reached. Check the network connection; retrying.");
  }
  if (response.status === 204) return null;
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) {
    const detail = data && typeof data.detail === "string" ? data.detail : `${response.status} ${response.statusText}`;
    if (response.status === 401 && !path.startsWith("/auth/")) signedOut(detail);
    throw new ApiError(response.status, detail, response.headers.get("Retry-After"));
  }
  return data;
}
