// The header badge that says how the real-time connection is doing.

const LABELS = {
  offline: () => "offline",
  connecting: () => "connecting…",
  online: ({ resumed }) => (resumed ? "online · resumed" : "online"),
  reconnecting: ({ inMs }) => (inMs ? `reconnecting in ${(inMs / 1000).toFixed(1)} s…` : "reconnecting…"),
  closed: () => "disconnected",
};

export function showConnection(el, gateway) {
  gateway.on("state", (detail) => {
    el.dataset.state = detail.state;
    el.dataset.resumed = String(Boolean(detail.resumed));
    el.textContent = (LABELS[detail.state] ?? LABELS.offline)(detail);
  });
}
