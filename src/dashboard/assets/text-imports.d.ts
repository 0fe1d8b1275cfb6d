// Files the dashboard embeds as text (`with { type: "text" }`): Bun and Deno give their contents as a string.
declare module "*.css" {
  const text: string;
  export default text;
}
declare module "*/charts.js" {
  const text: string;
  export default text;
}
declare module "uplot/dist/uPlot.iife.min.js" {
  const text: string;
  export default text;
}
