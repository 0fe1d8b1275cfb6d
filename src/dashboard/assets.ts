import { createHash } from "node:crypto";
import uplotCss from "uplot/dist/uPlot.min.css" with { type: "text" };
import uplotJs from "uplot/dist/uPlot.iife.min.js" with { type: "text" };
import chartsJs from "./assets/charts.js" with { type: "text" };
import dashboardCss from "./assets/dashboard.css" with { type: "text" };

/** One file the dashboard serves, under a name that changes with its content (so it may be cached for good). */
export interface Asset {
  readonly path: string;
  readonly type: string;
  readonly body: string;
}

/** The dashboard's files by role: inside the binary, imported as text, nothing read from disk or fetched. */
export interface Assets {
  readonly uplotJs: Asset;
  readonly uplotCss: Asset;
  readonly chartsJs: Asset;
  readonly css: Asset;
}

function asset(name: string, type: string, body: string): Asset {
  const hash = createHash("sha256").update(body).digest("hex").slice(0, 12);
  const dot = name.lastIndexOf(".");
  return { path: `/assets/${name.slice(0, dot)}.${hash}${name.slice(dot)}`, type, body };
}

export function dashboardAssets(): Assets {
  return {
    uplotJs: asset("uPlot.iife.min.js", "text/javascript; charset=utf-8", uplotJs),
    uplotCss: asset("uPlot.min.css", "text/css; charset=utf-8", uplotCss),
    chartsJs: asset("charts.js", "text/javascript; charset=utf-8", chartsJs),
    css: asset("dashboard.css", "text/css; charset=utf-8", dashboardCss),
  };
}
