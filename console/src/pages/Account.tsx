import { type FormEvent, type ReactNode, useCallback, useEffect, useState } from "react";
import { ApiError } from "../api/client";
import { useSignedIn } from "../auth/session";
import {
  Empty,
  ErrorNotice,
  Fact,
  Facts,
  Loading,
  Notice,
  PageTitle,
  StateBadge,
} from "../components/common";
import { FactorPrompt, factorsOf } from "../components/FactorPrompt";
import { formatDateTime } from "../lib/time";

interface Factor {
  id: string;
  kind: string;
  label: string;
  confirmed: boolean;
  createdAt: string;
  /** From when the factor counts toward a policy. */
  settlesAt: string | null;
  authorizedBy: "sign-in" | "factor" | "enrolment-code";
}

/** What the server accepts as permission to add a factor. */
interface EnrolmentProof {
  totp?: string;
  enrolmentCode?: string;
}

/** The enrolment refused for want of a fresh existing factor, kept to retry once one is presented. */
interface PendingEnrolment {
  kind: "totp" | "webauthn";
  factors: string[];
}

const counting = (factor: Factor, now: number) =>
  factor.confirmed && (factor.settlesAt === null || Date.parse(factor.settlesAt) <= now);

interface TotpEnrolment {
  factorId: string;
  secret: string;
  uri: string;
  qrSvg: string;
}

/**
 * The QR code the server drew, redrawn from its path data only: no server markup is inserted into
 * the page, and no data: URL is needed (the CSP allows images from this server alone).
 */
function QrCode({ svg, label }: { svg: string; label: string }) {
  const parsed = new DOMParser().parseFromString(svg, "image/svg+xml");
  const root = parsed.documentElement;
  const viewBox = root.getAttribute("viewBox") ?? "0 0 41 41";
  const paths: ReactNode[] = [...root.querySelectorAll("path")].map((path, index) => {
    const d = path.getAttribute("d") ?? "";
    const stroke = path.getAttribute("stroke");
    const safe = (color: string | null) => (color && /^#[0-9a-fA-F]{3,8}$/.test(color) ? color : undefined);
    return (
      <path
        // biome-ignore lint/suspicious/noArrayIndexKey: the paths of one drawing never reorder
        key={index}
        d={/^[MmHhVvZzLl0-9.\s-]*$/.test(d) ? d : ""}
        fill={stroke ? "none" : (safe(path.getAttribute("fill")) ?? "#fff")}
        stroke={safe(stroke)}
      />
    );
  });
  return (
    <svg className="qr" viewBox={viewBox} role="img" aria-label={label} shapeRendering="crispEdges">
      <title>{label}</title>
      {paths}
    </svg>
  );
}

type CreationStatics = typeof PublicKeyCredential & {
  parseCreationOptionsFromJSON?: (options: unknown) => PublicKeyCredentialCreationOptions;
};

export function AccountPage() {
  const { api, principal } = useSignedIn();
  const [factors, setFactors] = useState<Factor[] | null>(null);
  const [unsupported, setUnsupported] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [enrolment, setEnrolment] = useState<TotpEnrolment | null>(null);
  const [code, setCode] = useState("");
  const [keyLabel, setKeyLabel] = useState("security key");
  const [busy, setBusy] = useState(false);
  const [done, setDone] = useState<string | null>(null);
  const [enrolmentCode, setEnrolmentCode] = useState("");
  const [pending, setPending] = useState<PendingEnrolment | null>(null);

  const fetchFactors = useCallback(async () => {
    const reply = await api.get<{ factors: Factor[] }>("/v1/mfa/factors");
    setFactors(reply.factors);
    return reply.factors;
  }, [api]);
  const load = useCallback(() => {
    fetchFactors().catch((failure: unknown) => {
      if (failure instanceof ApiError && failure.status === 404) setUnsupported(true);
      else setError(failure);
    });
  }, [fetchFactors]);
  useEffect(load, [load]);

  const run = async (action: () => Promise<void>) => {
    setBusy(true);
    setError(null);
    setDone(null);
    try {
      await action();
    } catch (failure) {
      setError(failure);
    } finally {
      setBusy(false);
    }
  };

  /**
   * Runs an enrolment start; when the server asks for a fresh use of an existing factor, keeps it
   * to retry from the factor prompt instead of showing a bare refusal.
   */
  const enrol =
    (kind: PendingEnrolment["kind"], start: (proof: EnrolmentProof) => Promise<void>) =>
    async (proof: EnrolmentProof = {}) => {
      const withCode = enrolmentCode.trim() ? { ...proof, enrolmentCode: enrolmentCode.trim() } : proof;
      await run(async () => {
        try {
          await start(withCode);
          setPending(null);
          setEnrolmentCode("");
        } catch (failure) {
          const factors = factorsOf(failure, []);
          if (
            failure instanceof ApiError &&
            failure.code === "FACTOR_REQUIRED" &&
            (failure.details as { factors?: unknown[] } | undefined)?.factors?.length
          ) {
            setPending({ kind, factors });
            return;
          }
          throw failure;
        }
      });
    };

  const startTotp = enrol("totp", async (proof) => {
    setEnrolment(await api.post<TotpEnrolment>("/v1/mfa/totp/enroll", proof));
    setCode("");
  });
  const confirmTotp = (event: FormEvent) => {
    event.preventDefault();
    void run(async () => {
      await api.post("/v1/mfa/totp/verify", { code });
      const confirmed = (await fetchFactors()).find((f) => f.id === enrolment?.factorId);
      setEnrolment(null);
      setDone(
        !confirmed || counting(confirmed, Date.now())
          ? "Authenticator app confirmed: it counts as a factor from now on."
          : `Authenticator app confirmed: it counts as a factor from ${formatDateTime(confirmed.settlesAt as string)}. A factor added with only your sign-in, or just added, waits so that a stolen sign-in cannot add one and use it at once.`,
      );
    });
  };
  const addKey = enrol("webauthn", async (proof) => {
    const statics = window.PublicKeyCredential as CreationStatics | undefined;
    if (!statics?.parseCreationOptionsFromJSON) throw new Error("this browser cannot register security keys");
    const options = await api.post<Record<string, unknown>>("/v1/mfa/webauthn/register/options", proof);
    const credential = (await navigator.credentials.create({
      publicKey: statics.parseCreationOptionsFromJSON(options),
    })) as (PublicKeyCredential & { toJSON(): unknown }) | null;
    if (!credential) throw new Error("no security key answered");
    await api.post("/v1/mfa/webauthn/register", { response: credential.toJSON(), label: keyLabel.trim() });
    const registered = await fetchFactors();
    const newest = registered.filter((f) => f.kind === "webauthn").at(-1);
    setDone(
      !newest || counting(newest, Date.now())
        ? "Security key registered."
        : `Security key registered: it counts as a factor from ${formatDateTime(newest.settlesAt as string)}.`,
    );
  });
  const retry = (proof: EnrolmentProof) => {
    if (pending?.kind === "totp") void startTotp(proof);
    else if (pending?.kind === "webauthn") void addKey(proof);
  };

  return (
    <>
      <PageTitle title="Account">Your account</PageTitle>
      <section className="panel" aria-labelledby="who-title">
        <h2 id="who-title">Who Firebreak sees</h2>
        <Facts>
          <Fact label="Name">{principal.name}</Fact>
          <Fact label="Groups">{principal.groups.length > 0 ? principal.groups.join(", ") : "none"}</Fact>
          <Fact label="Roles">
            {[principal.isAdmin ? "administrator" : null, principal.isAuditor ? "auditor" : null]
              .filter(Boolean)
              .join(", ") || "none"}
          </Fact>
        </Facts>
      </section>
      <section className="panel" aria-labelledby="factors-title">
        <h2 id="factors-title">Factors</h2>
        <p className="lede">
          Policies may ask for a fresh factor when you activate a grant or approve one. Enrol one before the
          emergency: a first factor added with only your sign-in counts after a waiting period, at once with
          an enrolment code from an administrator. Adding another factor asks for a fresh use of one you have.
        </p>
        <ErrorNotice error={error} />
        {done ? <Notice tone="ok">{done}</Notice> : null}
        {unsupported ? (
          <Empty>This server does not offer factor enrolment.</Empty>
        ) : factors === null ? (
          <Loading what="your factors" />
        ) : (
          <>
            {factors.length === 0 ? (
              <Empty>No factor enrolled yet.</Empty>
            ) : (
              <ul className="plain-list factor-list">
                {factors.map((factor) => (
                  <li key={factor.id} data-factor={factor.kind}>
                    <strong>{factor.kind === "totp" ? "Authenticator app" : "Security key"}</strong>
                    {["authenticator app", "security key"].includes(factor.label.toLowerCase())
                      ? null
                      : ` (${factor.label})`}{" "}
                    <StateBadge
                      state={factor.confirmed ? "accepted" : "pending"}
                      label={factor.confirmed ? "confirmed" : "not confirmed"}
                    />{" "}
                    <span className="muted">added {formatDateTime(factor.createdAt)}</span>
                    {factor.confirmed && !counting(factor, Date.now()) ? (
                      <span className="muted">
                        {" "}
                        · counts from {formatDateTime(factor.settlesAt as string)}
                      </span>
                    ) : null}
                  </li>
                ))}
              </ul>
            )}
            {pending ? (
              <FactorPrompt
                api={api}
                factors={pending.factors}
                action="add a factor"
                busy={busy}
                onSubmit={retry}
                onCancel={() => setPending(null)}
              />
            ) : null}
            <div className="field">
              <label htmlFor="enrolment-code">
                Enrolment code from an administrator (if you were given one)
              </label>
              <input
                id="enrolment-code"
                autoComplete="off"
                spellCheck={false}
                maxLength={64}
                size={24}
                value={enrolmentCode}
                onChange={(event) => setEnrolmentCode(event.target.value)}
              />
            </div>
            <div className="factor-setup">
              <div className="stack">
                <h3>Authenticator app (TOTP)</h3>
                {enrolment ? (
                  <form className="stack" onSubmit={confirmTotp}>
                    <QrCode svg={enrolment.qrSvg} label="QR code to scan with your authenticator app" />
                    <p>
                      Or type this key: <code className="totp-secret">{enrolment.secret}</code>
                    </p>
                    <div className="field">
                      <label htmlFor="totp-code">Code shown by the app</label>
                      <input
                        id="totp-code"
                        inputMode="numeric"
                        autoComplete="one-time-code"
                        pattern="[0-9]{6}"
                        maxLength={6}
                        size={8}
                        required
                        value={code}
                        onChange={(event) => setCode(event.target.value.replace(/\D/g, ""))}
                      />
                    </div>
                    <div className="actions">
                      <button type="submit" className="button primary" disabled={busy || code.length !== 6}>
                        Confirm
                      </button>
                      <button type="button" className="button subtle" onClick={() => setEnrolment(null)}>
                        Cancel
                      </button>
                    </div>
                  </form>
                ) : (
                  <div className="actions">
                    <button type="button" className="button" disabled={busy} onClick={() => void startTotp()}>
                      Set up an authenticator app
                    </button>
                  </div>
                )}
              </div>
              <div className="stack">
                <h3>Security key or passkey (WebAuthn)</h3>
                <div className="field">
                  <label htmlFor="key-label">Name for this key</label>
                  <input
                    id="key-label"
                    maxLength={200}
                    size={24}
                    value={keyLabel}
                    onChange={(event) => setKeyLabel(event.target.value)}
                  />
                </div>
                <div className="actions">
                  <button
                    type="button"
                    className="button"
                    disabled={busy || !keyLabel.trim()}
                    onClick={() => void addKey()}
                  >
                    Add a security key or passkey
                  </button>
                </div>
              </div>
            </div>
          </>
        )}
      </section>
    </>
  );
}
