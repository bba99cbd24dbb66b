import cytoscape, { type Core, type ElementDefinition, type StylesheetJson } from "cytoscape";
import { useEffect, useRef } from "react";
import type { ZoneView } from "../api/types";
import type { ClosedGrant, OpenGrant } from "../lib/grants";
import { formatRemaining } from "../lib/time";

/**
 * Zones and standing flows drawn with cytoscape. Grants light their zone (amber, with the time
 * left) and draw their path from the requester's source zone; a closed grant turns its zone and
 * path grey with how it closed, until it leaves the map. Loaded as its own chunk: the sign-in page
 * does not pay for the graph library.
 */

const COLORS = {
  zone: "#f6f8fa",
  zoneBorder: "#57606a",
  text: "#1f2328",
  flow: "#8c959f",
  flowText: "#57606a",
  open: "#fff1cc",
  openBorder: "#b35900",
  openText: "#6b3300",
  glow: "#f59e0b",
  closed: "#eaeef2",
  closedBorder: "#6e7781",
  selected: "#0550ae",
  incident: "#cf222e",
};

const STYLE: StylesheetJson = [
  {
    selector: "node",
    style: {
      shape: "round-rectangle",
      width: 176,
      height: 68,
      "background-color": COLORS.zone,
      "border-width": 2,
      "border-color": COLORS.zoneBorder,
      label: "data(label)",
      "text-wrap": "wrap",
      "text-max-width": "168px",
      "text-valign": "center",
      "text-halign": "center",
      "font-family": "system-ui, -apple-system, Roboto, Helvetica, Arial, sans-serif",
      "font-size": 15,
      "line-height": 1.3,
      color: COLORS.text,
    },
  },
  { selector: "node.monitor", style: { "border-style": "dashed" } },
  { selector: "node.incident", style: { "border-color": COLORS.incident, "border-width": 3 } },
  {
    selector: "node.open",
    style: {
      "background-color": COLORS.open,
      "border-color": COLORS.openBorder,
      "border-width": 4,
      color: COLORS.openText,
      "font-weight": "bold",
      "underlay-color": COLORS.glow,
      "underlay-padding": 10,
      "underlay-opacity": 0.45,
    },
  },
  {
    selector: "node.closed",
    style: {
      "background-color": COLORS.closed,
      "border-color": COLORS.closedBorder,
      "border-width": 3,
      "border-style": "double",
      color: COLORS.text,
    },
  },
  {
    selector: "node.selected",
    style: { "overlay-color": COLORS.selected, "overlay-opacity": 0.1, "overlay-padding": 7 },
  },
  {
    selector: "edge",
    style: {
      width: 2,
      "curve-style": "bezier",
      "line-color": COLORS.flow,
      "target-arrow-color": COLORS.flow,
      "target-arrow-shape": "triangle",
      label: "data(label)",
      "font-size": 12,
      color: COLORS.flowText,
      "text-background-color": "#ffffff",
      "text-background-opacity": 0.9,
      "text-background-padding": "2px",
      "text-rotation": "autorotate",
    },
  },
  {
    selector: "edge.grant-path",
    style: {
      // Arced, so the path stays visible beside a standing flow and around zones in between.
      "curve-style": "unbundled-bezier",
      "control-point-distances": [90],
      "control-point-weights": [0.5],
      width: 4,
      "line-color": COLORS.openBorder,
      "target-arrow-color": COLORS.openBorder,
      "line-style": "dashed",
      "line-dash-pattern": [10, 6],
      color: COLORS.openText,
      "font-weight": "bold",
      "font-size": 14,
      "z-index": 10,
    },
  },
  {
    selector: "edge.grant-path.closed",
    style: {
      width: 3,
      "line-color": COLORS.closedBorder,
      "target-arrow-color": COLORS.closedBorder,
      "target-arrow-shape": "tee",
      "line-style": "dotted",
      color: COLORS.text,
      "font-weight": "normal",
    },
  },
];

function zoneElements(zones: ZoneView[]): ElementDefinition[] {
  const names = new Set(zones.map((z) => z.name));
  const nodes: ElementDefinition[] = zones.map((zone) => ({
    group: "nodes",
    data: { id: `zone:${zone.name}`, name: zone.name, label: zone.name },
    classes: zone.enforcement === "monitor" ? "monitor" : "",
  }));
  const edges: ElementDefinition[] = zones.flatMap((zone) =>
    zone.flowsOut
      .filter((flow) => names.has(flow.to))
      .map((flow) => ({
        group: "edges" as const,
        data: {
          id: `flow:${zone.name}->${flow.to}`,
          source: `zone:${zone.name}`,
          target: `zone:${flow.to}`,
          label: flow.ports.join(", "),
        },
        classes: "flow",
      })),
  );
  return [...nodes, ...edges];
}

/** What structure the graph shows; a new one means a new layout. */
function structureKey(zones: ZoneView[]): string {
  return JSON.stringify(zones.map((z) => [z.name, z.enforcement, z.flowsOut.map((f) => [f.to, f.ports])]));
}

function subtitle(zone: ZoneView): string {
  const label = zone.labels.tier ?? zone.labels.app ?? "";
  const tier = label === zone.name ? "" : label;
  const mode = zone.enforcement === "monitor" ? "monitor" : "";
  return [tier, mode].filter(Boolean).join(" · ");
}

function applyState(
  cy: Core,
  zones: ZoneView[],
  open: OpenGrant[],
  closed: ClosedGrant[],
  selected: string | null,
  now: number,
) {
  cy.batch(() => {
    for (const zone of zones) {
      const node = cy.getElementById(`zone:${zone.name}`);
      if (node.empty()) continue;
      const here = open.filter((o) => o.grant.zone === zone.name);
      const closedHere = closed.filter((c) => c.grant.zone === zone.name);
      let label = zone.name;
      if (here.length > 0) {
        const soonest = Math.min(...here.map((o) => o.deadline));
        const more = here.length > 1 ? ` · ${here.length} grants` : "";
        label += `\nOPEN ${formatRemaining(soonest - now)}${more}`;
      } else if (closedHere.length > 0) {
        label += `\nclosed · ${closedHere.at(-1)?.how}`;
      } else {
        const sub = subtitle(zone);
        if (sub) label += `\n${sub}`;
      }
      if (zone.openIncidents.length > 0 && here.length === 0) label += "\n⚠ incident";
      node.data("label", label);
      node.toggleClass("open", here.length > 0);
      node.toggleClass("closed", here.length === 0 && closedHere.length > 0);
      node.toggleClass("incident", zone.openIncidents.length > 0);
      node.toggleClass("selected", zone.name === selected);
    }

    const wanted = new Map<string, { source: string; target: string; label: string; closed: boolean }>();
    for (const { grant, deadline } of open) {
      if (!grant.sourceZone || grant.sourceZone === grant.zone) continue;
      wanted.set(`grant:${grant.id}`, {
        source: `zone:${grant.sourceZone}`,
        target: `zone:${grant.zone}`,
        label: `${grant.user} · ${grant.role} · ${formatRemaining(deadline - now)}`,
        closed: false,
      });
    }
    for (const { grant, how } of closed) {
      if (!grant.sourceZone || grant.sourceZone === grant.zone || wanted.has(`grant:${grant.id}`)) continue;
      wanted.set(`grant:${grant.id}`, {
        source: `zone:${grant.sourceZone}`,
        target: `zone:${grant.zone}`,
        label: `${grant.user} · ${how}`,
        closed: true,
      });
    }
    cy.edges(".grant-path").forEach((edge) => {
      if (!wanted.has(edge.id())) edge.remove();
    });
    for (const [id, path] of wanted) {
      if (cy.getElementById(path.source).empty() || cy.getElementById(path.target).empty()) continue;
      let edge = cy.getElementById(id);
      if (edge.empty()) {
        edge = cy.add({
          group: "edges",
          data: { id, source: path.source, target: path.target, label: path.label },
          classes: "grant-path",
        });
      }
      edge.data("label", path.label);
      edge.toggleClass("closed", path.closed);
    }
  });
}

/**
 * Cytoscape adds an inline `<style>` (position: relative for its container) unless an element
 * with this id exists. The page's CSP refuses inline styles, and styles.css already positions
 * the container, so a placeholder keeps cytoscape from trying.
 */
function preventInlineStylesheet() {
  const id = "__________cytoscape_stylesheet";
  if (document.getElementById(id)) return;
  const placeholder = document.createElement("meta");
  placeholder.id = id;
  placeholder.name = "cytoscape-stylesheet-provided-by-styles-css";
  document.head.appendChild(placeholder);
}

export default function ZoneGraph(props: {
  zones: ZoneView[];
  open: OpenGrant[];
  closed: ClosedGrant[];
  selected: string | null;
  onSelect: (zone: string | null) => void;
  label: string;
}) {
  const container = useRef<HTMLDivElement>(null);
  const cyRef = useRef<Core | null>(null);
  const structure = useRef("");
  const latest = useRef(props);
  latest.current = props;

  // Create the graph once; tear it down with the page.
  useEffect(() => {
    if (!container.current) return;
    preventInlineStylesheet();
    const cy = cytoscape({
      container: container.current,
      style: STYLE,
      minZoom: 0.3,
      maxZoom: 2.5,
      boxSelectionEnabled: false,
      autoungrabify: false,
    });
    cy.on("tap", "node", (event) => latest.current.onSelect(event.target.data("name") as string));
    cy.on("tap", (event) => {
      if (event.target === cy) latest.current.onSelect(null);
    });
    cy.on("mouseover", "node", () => {
      if (container.current) container.current.style.cursor = "pointer";
    });
    cy.on("mouseout", "node", () => {
      if (container.current) container.current.style.cursor = "";
    });
    cyRef.current = cy;
    const resize = new ResizeObserver(() => {
      cy.resize();
      cy.fit(undefined, 30);
    });
    resize.observe(container.current);
    return () => {
      resize.disconnect();
      cy.destroy();
      cyRef.current = null;
    };
  }, []);

  // Zones and flows: rebuilt (and laid out again) only when the structure changes.
  useEffect(() => {
    const cy = cyRef.current;
    if (!cy) return;
    const key = structureKey(props.zones);
    if (key === structure.current) return;
    structure.current = key;
    cy.elements().remove();
    cy.add(zoneElements(props.zones));
    const roots = cy
      .nodes()
      .filter((node) => node.indegree(false) === 0)
      .map((node) => node.id());
    cy.layout({
      name: "breadthfirst",
      directed: true,
      direction: "rightward",
      roots,
      spacingFactor: 1.1,
      padding: 30,
      avoidOverlap: true,
      nodeDimensionsIncludeLabels: false,
      animate: false,
    }).run();
    cy.fit(undefined, 30);
  }, [props.zones]);

  // Grants, selection and countdowns: every change and every second.
  useEffect(() => {
    const cy = cyRef.current;
    if (!cy) return;
    const update = () => applyState(cy, props.zones, props.open, props.closed, props.selected, Date.now());
    update();
    const timer = setInterval(update, 1000);
    return () => clearInterval(timer);
  }, [props.open, props.closed, props.selected, props.zones]);

  // Open paths march towards their zone, unless the person asked for less motion.
  useEffect(() => {
    const cy = cyRef.current;
    if (!cy || window.matchMedia("(prefers-reduced-motion: reduce)").matches) return;
    if (!props.open.some((o) => o.grant.sourceZone)) return;
    let offset = 0;
    const timer = setInterval(() => {
      offset = (offset - 2) % 160;
      cy.edges(".grant-path").not(".closed").style("line-dash-offset", offset);
    }, 80);
    return () => clearInterval(timer);
  }, [props.open]);

  return (
    <div
      ref={container}
      className="zone-graph"
      role="img"
      aria-label={props.label}
      data-open-zones={[...new Set(props.open.map((o) => o.grant.zone))].sort().join(" ")}
      data-closed-zones={[...new Set(props.closed.map((c) => c.grant.zone))].sort().join(" ")}
    />
  );
}
