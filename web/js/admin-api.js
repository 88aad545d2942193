// The staff API (/api/v1/admin/...): every call carries the bearer token; the
// server checks every role, this module only spares the screens the URLs.

import { api } from "./api.js";

const q = (params) => new URLSearchParams(Object.entries(params).filter(([, v]) => v !== "" && v != null)).toString();
const enc = encodeURIComponent;
const call = (method, path, body) => api(method, path, { body, auth: true });

export const STAFF_ROLES = new Set(["moderator", "editor", "admin"]);
export const canModerate = (role) => role === "moderator" || role === "admin";
export const canEdit = (role) => role === "editor" || role === "admin";
export const isAdmin = (role) => role === "admin";

export const searchUsers = (params) => call("GET", `/api/v1/admin/users?${q(params)}`);
export const userDetail = (user) => call("GET", `/api/v1/admin/users/${enc(user)}`);
export const banUser = (user, reason, until) => call("POST", `/api/v1/admin/users/${enc(user)}/ban`, { reason, until });
export const unbanUser = (user, reason) => call("POST", `/api/v1/admin/users/${enc(user)}/unban`, { reason });
export const resetSessions = (user) => call("POST", `/api/v1/admin/users/${enc(user)}/sessions/revoke`);
export const grantRole = (user, role) => call("PUT", `/api/v1/admin/users/${enc(user)}/role`, { role });
export const revokeRole = (user) => call("DELETE", `/api/v1/admin/users/${enc(user)}/role`);
export const auditLog = (params) => call("GET", `/api/v1/admin/audit?${q(params)}`);

export const listPosts = (params) => call("GET", `/api/v1/admin/posts?${q(params)}`);
export const getPost = (id) => call("GET", `/api/v1/admin/posts/${enc(id)}`);
export const createPost = (fields) => call("POST", "/api/v1/admin/posts", fields);
export const updatePost = (id, fields) => call("PATCH", `/api/v1/admin/posts/${enc(id)}`, fields);
export const deletePost = (id) => call("DELETE", `/api/v1/admin/posts/${enc(id)}`);
export const publishPost = (id, at) => call("POST", `/api/v1/admin/posts/${enc(id)}/publish`, at ? { at } : {});
export const unpublishPost = (id) => call("POST", `/api/v1/admin/posts/${enc(id)}/unpublish`);
export const previewMarkdown = (markdown) => call("POST", "/api/v1/admin/posts/preview", { body_markdown: markdown });

export const staffCourses = () => call("GET", "/api/v1/admin/courses");
export const staffCourse = (slug) => call("GET", `/api/v1/admin/courses/${enc(slug)}`);
export const createCourse = (fields) => call("POST", "/api/v1/admin/courses", fields);
export const updateCourse = (slug, fields) => call("PATCH", `/api/v1/admin/courses/${enc(slug)}`, fields);
export const deleteCourse = (slug) => call("DELETE", `/api/v1/admin/courses/${enc(slug)}`);

export const listReports = (params) => call("GET", `/api/v1/admin/reports?${q(params)}`);
export const decideReport = (id, verdict, note) => call("POST", `/api/v1/admin/reports/${enc(id)}/${verdict}`, { note });
export const listFlags = (params) => call("GET", `/api/v1/admin/flags?${q(params)}`);
export const decideFlag = (id, verdict, note) => call("POST", `/api/v1/admin/flags/${enc(id)}/${verdict}`, { note });
