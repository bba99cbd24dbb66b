import { useCallback, useEffect, useState } from "react";
import type { GrantView, RequestView } from "../api/types";
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
import { GatewaySessions } from "../components/GatewaySessions";
import { ReviewForm } from "../components/ReviewForm";
import { targetText } from "../components/requests";
import { UserText } from "../components/UserText";
import { useLiveUpdates } from "../lib/live";
import { formatDateTime, relativeTime } from "../lib/time";
import { Link } from "../router";

/** The request behind a grant, when this reviewer may read it (reason, ticket, approvers). */
function useRequestOf(grant: GrantView) {
  const { api } = useSignedIn();
  const [request, setRequest] = useState<RequestView | null>(null);
  useEffect(() => {
    api
      .get<RequestView>(`/v1/requests/${grant.requestId}`)
      .then(setRequest)
      .catch(() => setRequest(null));
  }, [api, grant.requestId]);
  return request;
}

function ReviewCard({ grant, onDone }: { grant: GrantView; onDone: (grant: GrantView) => void }) {
  const request = useRequestOf(grant);
  const { principal } = useSignedIn();
  const approvers = request?.approvals.filter((a) => a.decision === "approve").map((a) => a.approver) ?? [];
  const approvedBy = request
    ? approvers.join(", ") || (request.autoApproved ? "auto-approved" : "no approval needed")
    : null;
  return (
    <li className={`card${grant.review.overdue ? " card-alert" : ""}`} data-grant={grant.id}>
      <div className="card-head">
        <h3>
          {grant.user} held {targetText(grant)} <StateBadge state={grant.state} />{" "}
          {grant.review.overdue ? <StateBadge state="failed" label="review overdue" /> : null}
        </h3>
        <p className="muted">
          <Link href={`/grants/${grant.id}`} className="id-link">
            {grant.id}
          </Link>{" "}
          · review due{" "}
          {grant.review.dueAt
            ? `${formatDateTime(grant.review.dueAt)} (${relativeTime(grant.review.dueAt)})`
            : "—"}
        </p>
      </div>
      <Facts>
        <Fact label="Reason">{request ? <UserText text={request.reason} /> : null}</Fact>
        <Fact label="Ticket">{request?.ticket ? <UserText text={request.ticket} /> : null}</Fact>
        <Fact label="Approved by">{approvedBy}</Fact>
        <Fact label="Window">
          {formatDateTime(grant.startsAt)} → {formatDateTime(grant.closedAt ?? grant.endsAt)}
        </Fact>
        <Fact label="Ended">
          {grant.closedAt ? (
            <>
              {grant.state}
              {grant.closeReason ? (
                <>
                  {" "}
                  — “<UserText text={grant.closeReason} />”
                </>
              ) : null}
              {grant.closedBy ? ` by ${grant.closedBy}` : ""}
            </>
          ) : (
            "still open"
          )}
        </Fact>
        <Fact label="Revocation">{grant.revocation.status}</Fact>
      </Facts>
      {principal.isAdmin || principal.isAuditor ? (
        <p>
          <Link href={`/audit?subject=${grant.id}`}>What happened during the grant (audit)</Link>
        </p>
      ) : null}
      <GatewaySessions grantId={grant.id} open={grant.state === "active"} />
      <ReviewForm grant={grant} onDone={onDone} />
    </li>
  );
}

export function ReviewsPage() {
  const { api, principal } = useSignedIn();
  const [reviews, setReviews] = useState<GrantView[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [done, setDone] = useState<string | null>(null);
  const load = useCallback(() => {
    api
      .get<{ reviews: GrantView[] }>("/v1/reviews", { due: true })
      .then((reply) => {
        setReviews(reply.reviews.filter((g) => g.user !== principal.name));
        setError(null);
      })
      .catch(setError);
  }, [api, principal.name]);
  useEffect(load, [load]);
  useLiveUpdates(
    (event) => event.type === "review.completed" || event.type.startsWith("grant."),
    load,
    15_000,
  );
  const overdue = (reviews ?? []).filter((g) => g.review.overdue).length;

  return (
    <>
      <PageTitle title="Reviews">Reviews due</PageTitle>
      <p className="lede">
        Every break-glass use is checked afterwards by someone who neither asked for it nor approved it.
      </p>
      <ErrorNotice error={error} />
      {done ? <Notice tone="ok">{done}</Notice> : null}
      {reviews === null ? (
        <Loading what="reviews" />
      ) : reviews.length === 0 ? (
        <Empty>No review waits for you.</Empty>
      ) : (
        <>
          {overdue > 0 ? (
            <Notice tone="warn">
              {overdue} review{overdue === 1 ? " is" : "s are"} overdue; an overdue review may block its
              user's next request.
            </Notice>
          ) : null}
          <ul className="cards">
            {reviews.map((grant) => (
              <ReviewCard
                key={grant.id}
                grant={grant}
                onDone={(next) => {
                  setDone(`Review of ${next.id} recorded: ${next.review.state}.`);
                  load();
                }}
              />
            ))}
          </ul>
        </>
      )}
    </>
  );
}
