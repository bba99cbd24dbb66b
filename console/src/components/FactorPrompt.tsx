import { type FormEvent, useId, useState } from "react";
import { type Api, ApiError } from "../api/client";
import { ErrorNotice } from "./common";

/** The factors an error or a request names (`details.factors`), defaulting to both kinds. */
export function factorsOf(error: unknown, fallback: readonly string[] = []): string[] {
  if (error instanceof ApiError) {
    const listed = (error.details as { factors?: unknown } | undefined)?.factors;
    if (Array.isArray(listed) && listed.every((f) => typeof f === "string")) return listed as string[];
  }
  return fallback.length > 0 ? [...fallback] : ["totp", "webauthn"];
}

export function needsFactor(error: unknown): boolean {
  return error instanceof ApiError && (error.code === "FACTOR_REQUIRED" || error.code === "FACTOR_INVALID");
}

type PublicKeyCredentialStatics = typeof PublicKeyCredential & {
  parseRequestOptionsFromJSON?: (options: unknown) => PublicKeyCredentialRequestOptions;
};

/** A WebAuthn assertion through the server's options, presented as a fresh factor. */
async function presentWebAuthn(api: Api): Promise<void> {
  const statics = window.PublicKeyCredential as PublicKeyCredentialStatics | undefined;
  if (!statics?.parseRequestOptionsFromJSON) throw new Error("this browser cannot use security keys here");
  const options = await api.post<Record<string, unknown>>("/v1/mfa/webauthn/assert/options");
  const credential = (await navigator.credentials.get({
    publicKey: statics.parseRequestOptionsFromJSON(options),
  })) as (PublicKeyCredential & { toJSON(): unknown }) | null;
  if (!credential) throw new Error("no security key answered");
  await api.post("/v1/mfa/webauthn/assert", { response: credential.toJSON() });
}

/**
 * Asks for a fresh factor when the policy names one: a TOTP code sent with the action, or a
 * security key / passkey presented first (the action then counts that fresh use).
 */
export function FactorPrompt(props: {
  api: Api;
  factors: readonly string[];
  action: string;
  busy: boolean;
  onSubmit: (factor: { totp?: string }) => void;
  onCancel: () => void;
}) {
  const id = useId();
  const [code, setCode] = useState("");
  const [error, setError] = useState<unknown>(null);
  const [presenting, setPresenting] = useState(false);
  const totp = props.factors.includes("totp");
  const webauthn = props.factors.includes("webauthn");

  const submit = (event: FormEvent) => {
    event.preventDefault();
    props.onSubmit({ totp: code.trim() });
  };
  const presentKey = async () => {
    setError(null);
    setPresenting(true);
    try {
      await presentWebAuthn(props.api);
      props.onSubmit({});
    } catch (failure) {
      setError(failure);
    } finally {
      setPresenting(false);
    }
  };

  return (
    <fieldset className="factor-prompt">
      <legend>Confirm it is you to {props.action}</legend>
      <p className="hint">The policy asks for a fresh {props.factors.join(" or ")} factor.</p>
      <ErrorNotice error={error} />
      {totp ? (
        <form onSubmit={submit} className="inline-form">
          <label htmlFor={`${id}-code`}>Authenticator code</label>
          <input
            id={`${id}-code`}
            inputMode="numeric"
            autoComplete="one-time-code"
            pattern="[0-9]{6}"
            maxLength={6}
            required
            value={code}
            onChange={(event) => setCode(event.target.value.replace(/\D/g, ""))}
          />
          <button type="submit" className="button primary" disabled={props.busy || code.length !== 6}>
            Confirm and {props.action}
          </button>
        </form>
      ) : null}
      <div className="actions">
        {webauthn ? (
          <button type="button" className="button" disabled={props.busy || presenting} onClick={presentKey}>
            {presenting ? "Waiting for your security key…" : "Use a security key or passkey"}
          </button>
        ) : null}
        <button type="button" className="button subtle" onClick={props.onCancel}>
          Cancel
        </button>
      </div>
    </fieldset>
  );
}
