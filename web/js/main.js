// Starts the client: auth, the gateway connection, the screens and the test hooks.

import { accessToken, clientConfig, refreshTokens } from "./api.js";
import { authStore } from "./auth-store.js";
import { showConnection } from "./connection-badge.js";
import { h } from "./dom.js";
import { Gateway } from "./gateway.js";
import { LobbyState } from "./lobby-state.js";
import { RaceState } from "./race-state.js";
import { ServerClock } from "./server-clock.js";
import { renderNav } from "./nav.js";
import { mountNotices, notify, notifyError } from "./notices.js";
import { Router } from "./router.js";
import { signInScreen, signUpScreen } from "./screens/auth.js";
import { lobbyScreen } from "./screens/lobby.js";
import { profileScreen } from "./screens/profile.js";
import { raceScreen } from "./screens/race.js";
import { achievementsScreen } from "./screens/achievements.js";
import { challengeScreen } from "./screens/challenge.js";
import { insightsScreen } from "./screens/insights.js";
import { leaderboardsScreen } from "./screens/leaderboards.js";
import { soloScreen } from "./screens/solo.js";
import { catalogScreen, courseScreen, lessonScreen } from "./screens/courses.js";
import { checkoutScreen, plansScreen, sandboxPayScreen } from "./screens/billing.js";
import { adminScreen } from "./screens/admin.js";
import { forgotPasswordScreen, resetPasswordScreen, verifyEmailScreen } from "./screens/account-mail.js";

const NEEDS_AUTH = new Set(["home", "solo", "race", "lobby", "profile", "leaderboards", "insights", "challenge", "achievements", "lesson", "checkout", "sandbox-pay", "admin"]);

async function boot() {
  mountNotices(document.getElementById("notices"));
  let config;
  try {
    config = await clientConfig();
  } catch (err) {
    notifyError(err);
    config = { ws_url: `ws://${location.hostname}:8765/ws` };
  }

  const gateway = new Gateway({ url: config.ws_url, getToken: accessToken, refreshToken: () => refreshTokens() });
  const lobby = new LobbyState(gateway);
  const race = new RaceState(gateway);
  const clock = new ServerClock();
  const stateLog = [];
  gateway.on("state", ({ state }) => stateLog.push(state));
  gateway.on("server-error", notifyError);
  showConnection(document.getElementById("conn"), gateway);

  let router;
  const signedIn = (route) => router.go(route);
  const signOut = () => {
    gateway.stop();
    authStore.clear();
  };
  router = new Router(document.getElementById("view"), {
    home: { mount: () => {} },
    signin: signInScreen(signedIn),
    signup: signUpScreen(signedIn),
    profile: profileScreen(signOut),
    lobby: lobbyScreen(gateway, lobby),
    solo: soloScreen(gateway),
    race: raceScreen(gateway, race, clock),
    leaderboards: leaderboardsScreen(),
    insights: insightsScreen(),
    challenge: challengeScreen(),
    achievements: achievementsScreen(),
    courses: catalogScreen(),
    course: courseScreen(),
    lesson: lessonScreen(),
    plans: plansScreen(),
    checkout: checkoutScreen(accessToken),
    "sandbox-pay": sandboxPayScreen(),
    admin: adminScreen(),
    "forgot-password": forgotPasswordScreen(),
    "reset-password": resetPasswordScreen(),
    "verify-email": verifyEmailScreen(),
    notfound: { mount: (view) => view.append(h("section", { class: "card" }, h("h2", {}, "Nothing here"), h("a", { href: "#/" }, "Back"))) },
  }, (route) => {
    if (!authStore.signedIn && NEEDS_AUTH.has(route)) return "signin";
    if (authStore.signedIn && route === "home") return "solo";
    if (authStore.signedIn && !authStore.isGuest && (route === "signin" || route === "signup")) return "profile";
    return null;
  });

  const nav = document.getElementById("nav");
  const refreshNav = () => renderNav(nav, router.current, signOut);
  document.addEventListener("typogram:screen", refreshNav);

  let wasSignedIn = false;
  const followAuth = (auth) => {
    if (auth?.access_token) {
      gateway.start(auth.user.id);
    } else {
      gateway.stop();
      if (wasSignedIn) notify("You are signed out.");
      if (NEEDS_AUTH.has(router.current)) router.go("signin");
    }
    wasSignedIn = Boolean(auth?.access_token);
    refreshNav();
  };
  authStore.on("change", followAuth);
  followAuth(authStore.current);
  router.render();

  // Hooks for the browser tests and for debugging from the console.
  window.__typogram = {
    gateway,
    lobby,
    race,
    clock,
    stateLog,
    dropSocket: (holdMs = 0) => gateway.dropSocket(holdMs),
    renewToken: () => gateway.renewToken(),
  };
  document.documentElement.dataset.ready = "true";
}

boot();
