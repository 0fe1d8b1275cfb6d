import type { Assets } from "./assets.ts";
import { Document } from "./layout.tsx";

/** The login form: the admin token or an API key with the read scope, sent in the body, never in a URL. */
export function LoginPage(props: { assets: Assets; error?: string }) {
  return (
    <Document title="Log in" assets={props.assets}>
      <main class="login">
        <h1>relay</h1>
        {props.error && <p class="notice error" role="alert">{props.error}</p>}
        <form method="post" action="/login">
          <label for="token">Admin token or API key</label>
          <input id="token" name="token" type="password" autocomplete="current-password" required autofocus />
          <button type="submit">Log in</button>
        </form>
        <p class="muted">An API key needs the read scope to look, the admin scope to steer.</p>
      </main>
    </Document>
  );
}
