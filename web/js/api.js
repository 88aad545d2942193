// The REST client: JSON in and out, bearer tokens, one refresh at a time.
//
// Refresh tokens are single-use and a replayed one revokes the whole login,
// so two refreshes must never race: within a tab one promise is shared, and
// across tabs the Web Locks API serialises them (a tab that waited re-reads
// storage and uses the pair the other tab already got).

import { authStore, tokenExpiry } from "./auth-store.js";

const REFRESH_MARGIN_S = 30;

export class ApiError extends Error {
  constructor(status, { code = "internal", message = "request failed", fields } = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.fields = fields ?? null;
  }
}

async function send(method, path, body, token) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (token) headers.Authorization = `Bearer ${token}`;
  let response;
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (err) {
    throw new ApiError(0, { code: "unavailable", message: `cannot reach the server: ${err.message}` });
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    const error = data?.error ?? { code: "internal", message: `HTTP ${response.status}` };
    throw new ApiError(response.status, error);
  }
  return data;
}

let refreshing = null;

async function refreshOnce(staleAccess) {
  const current = authStore.reload();
  if (!current?.refresh_token) throw new ApiError(401, { code: "unauthorized", message: "session expired, please sign in again" });
  if (current.access_token !== staleAccess && tokenExpiry(current.access_token) - Date.now() / 1000 > REFRESH_MARGIN_S) {
    return current.access_token; // another tab refreshed while we waited for the lock
  }
  try {
    const pair = await send("POST", "/api/v1/auth/refresh", { refresh_token: current.refresh_token });
    authStore.save(pair);
    return pair.access_token;
  } catch (err) {
    // A ban answers 403 "banned": the session is over as surely as with a 401.
    if (err.status === 401 || err.code === "banned") authStore.clear();
    throw err;
  }
}

/** Gets a new access token with the refresh token; concurrent callers share one refresh. */
export function refreshTokens(staleAccess = authStore.current?.access_token) {
  if (!refreshing) {
    const run = () => refreshOnce(staleAccess);
    const locked = navigator.locks ? navigator.locks.request("typogram.refresh", run) : run();
    refreshing = locked.finally(() => {
      refreshing = null;
    });
  }
  return refreshing;
}

/** A usable access token: refreshed first when it is about to expire. */
export async function accessToken() {
  const auth = authStore.current;
  if (!auth?.access_token) throw new ApiError(401, { code: "unauthorized", message: "not signed in" });
  const expiresIn = tokenExpiry(auth.access_token) - Date.now() / 1000;
  if (expiresIn > REFRESH_MARGIN_S || !auth.refresh_token) return auth.access_token;
  return refreshTokens(auth.access_token);
}

/**
 * One API call. With `auth: true` it sends the bearer token, and on a 401 it
 * refreshes once and retries (guests have nothing to refresh with).
 */
export async function api(method, path, { body, auth = false } = {}) {
  if (!auth) return send(method, path, body);
  const token = await accessToken();
  try {
    return await send(method, path, body, token);
  } catch (err) {
    if (err.status !== 401 || !authStore.current?.refresh_token) throw err;
    return send(method, path, body, await refreshTokens(token));
  }
}

export const register = (username, email, password) =>
  api("POST", "/api/v1/auth/register", { body: { username, email, password } });
export const login = (loginName, password) =>
  api("POST", "/api/v1/auth/login", { body: { login: loginName, password } });
export const playAsGuest = (name) =>
  api("POST", "/api/v1/auth/guest", { body: name ? { name } : {} });
export const logoutAll = () => api("POST", "/api/v1/auth/logout-all", { auth: true });
export const getProfile = () => api("GET", "/api/v1/users/me", { auth: true });
export const updateProfile = (changes) => api("PATCH", "/api/v1/users/me", { body: changes, auth: true });
export const clientConfig = () => api("GET", "/api/v1/client-config");
export const newTest = ({ mode = "words", count = 25, seconds = 30, lang = "en" } = {}) =>
  api("GET", `/api/v1/tests/new?${new URLSearchParams(mode === "time"
    ? { mode, seconds: String(seconds), lang } : { mode, count: String(count), lang })}`, { auth: true });
export const myResults = (limit = 10) => api("GET", `/api/v1/results/me?limit=${limit}`, { auth: true });
export const publicProfile = (username) => api("GET", `/api/v1/users/${encodeURIComponent(username)}`);
export const userStats = (username) => api("GET", `/api/v1/users/${encodeURIComponent(username)}/stats`);
export const myRaces = (limit = 10, cursor = null) =>
  api("GET", `/api/v1/users/me/races?limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`, { auth: true });
export const leaderboard = (board, { window = "alltime", around = false, limit = 50 } = {}) =>
  api("GET", `/api/v1/leaderboards/${encodeURIComponent(board)}?${new URLSearchParams(around
    ? { window, around: "me" } : { window, limit: String(limit) })}`, { auth: around });
export const myInsights = () => api("GET", "/api/v1/insights/me", { auth: true });
export const practiceNext = (lang = "en", count = 25) =>
  api("GET", `/api/v1/practice/next?${new URLSearchParams({ lang, count: String(count) })}`, { auth: true });
export const todaysChallenge = () => api("GET", "/api/v1/challenges/today");
export const submitAttempt = (challengeId, keystrokes) =>
  api("POST", `/api/v1/challenges/${encodeURIComponent(challengeId)}/attempts`, { body: { keystrokes }, auth: true });
export const myStreak = () => api("GET", "/api/v1/challenges/streak/me", { auth: true });
export const achievementCatalogue = () => api("GET", "/api/v1/achievements");
export const myAchievements = () => api("GET", "/api/v1/achievements/me", { auth: true });
export const submitResult = (testId, keystrokes) =>
  api("POST", "/api/v1/results", { body: { test_id: testId, keystrokes }, auth: true });
export const listCourses = (params = {}) =>
  api("GET", `/api/v1/courses?${new URLSearchParams(Object.entries(params).filter(([, v]) => v !== "" && v != null))}`);
export const getCourse = (slug) =>
  api("GET", `/api/v1/courses/${encodeURIComponent(slug)}`, { auth: authStore.signedIn });
export const enroll = (slug) => api("POST", `/api/v1/courses/${encodeURIComponent(slug)}/enroll`, { auth: true });
export const lessonTest = (slug, number) =>
  api("GET", `/api/v1/courses/${encodeURIComponent(slug)}/lessons/${number}/test`, { auth: true });
export const myCourses = () => api("GET", "/api/v1/enrollments/me", { auth: true });
export const mySubscription = () => api("GET", "/api/v1/subscriptions/me", { auth: true });
export const requestPasswordReset = (email) =>
  api("POST", "/api/v1/auth/password-reset", { body: { email } });
export const confirmPasswordReset = (token, password) =>
  api("POST", "/api/v1/auth/password-reset/confirm", { body: { token, password } });
export const verifyEmail = (token) => api("POST", "/api/v1/auth/verify-email", { body: { token } });
export const resendVerification = () => api("POST", "/api/v1/auth/verify-email/resend", { auth: true });
export const emailPreferences = () => api("GET", "/api/v1/users/me/email-preferences", { auth: true });
export const setEmailPreferences = (changes) =>
  api("PATCH", "/api/v1/users/me/email-preferences", { body: changes, auth: true });
