using System.Threading.RateLimiting;
using StackExchange.Redis;

namespace Tracker.ApiService.RateLimiting;

/// <summary>
/// The limiter of one partition (one IP, client or API key) of one policy, as ASP.NET Core's rate-limiting
/// middleware uses it: decisions come from Redis while it is reachable and from this instance's memory while it is
/// not. Each decision also sets the <c>RateLimit-Policy</c> and <c>RateLimit</c> headers on the current response,
/// because the middleware gives no other place that sees both the lease and the response of an allowed request.
/// </summary>
internal sealed class SharedRateLimiter(RateLimitRule rule, string key, RateLimitingServices services) : RateLimiter
{
    private readonly Lock _gate = new();
    private List<TaskCompletionSource<RateDecision?>>? _queued;
    private bool _roundTripInFlight;
    private long _lastUsed = services.Time.GetTimestamp();

    // Reported idle only once the window (or refill) has passed, so the middleware's cleanup of idle partitions
    // never forgets state that still limits.
    public override TimeSpan? IdleDuration
    {
        get
        {
            var idle = services.Time.GetElapsedTime(Interlocked.Read(ref _lastUsed)) - RateLimitingServices.StateLifetime(rule);
            return idle > TimeSpan.Zero ? idle : TimeSpan.Zero;
        }
    }

    public override RateLimiterStatistics? GetStatistics() => null;

    // Every decision is made once, in AcquireAsync: the middleware tries this synchronous path first and, when it
    // is refused, waits for the asynchronous one.
    protected override RateLimitLease AttemptAcquireCore(int permitCount) => DecisionLease.Deferred;

    protected override async ValueTask<RateLimitLease> AcquireAsyncCore(int permitCount, CancellationToken cancellationToken)
    {
        if (services.Redis.IsAvailable)
        {
            var waiter = new TaskCompletionSource<RateDecision?>(TaskCreationOptions.RunContinuationsAsynchronously);
            bool lead;
            lock (_gate)
            {
                (_queued ??= []).Add(waiter);
                lead = !_roundTripInFlight;
                _roundTripInFlight = true;
            }

            if (lead)
            {
                _ = DecideQueuedAsync();
            }

            if (await waiter.Task is { } decision)
            {
                services.Metrics.UsingRedis(rule.Policy);
                return Decide(decision, "redis");
            }
        }

        services.Metrics.UsingFallback(rule.Policy);
        return Decide(services.Local.Decide(rule, key), "memory");
    }

    // One round trip at a time per partition: requests that arrive while it is in flight are decided together by
    // the next one, in arrival order, so a hot key (one API key sending thousands of logs a second) costs Redis a
    // call per round trip rather than per request, and the decisions stay exact.
    private async Task DecideQueuedAsync()
    {
        while (true)
        {
            List<TaskCompletionSource<RateDecision?>> batch;
            lock (_gate)
            {
                if (_queued is not { Count: > 0 })
                {
                    _roundTripInFlight = false;
                    return;
                }

                (batch, _queued) = (_queued, null);
            }

            try
            {
                var decisions = await services.Store.DecideAsync(rule, key, batch.Count);
                for (var index = 0; index < batch.Count; index++)
                {
                    batch[index].TrySetResult(decisions[index]);
                }
            }
            catch (Exception exception) when (exception is RedisException or TimeoutException)
            {
                // Each waiting request falls back to this instance's memory.
                services.Redis.CommandFailed(nameof(SharedRateLimiter), exception);
                batch.ForEach(waiter => waiter.TrySetResult(null));
            }
            catch (Exception exception)
            {
                // Anything else is a bug: those requests fail (500), and the loop goes on for the next ones.
                batch.ForEach(waiter => waiter.TrySetException(exception));
            }
        }
    }

    private DecisionLease Decide(RateDecision decision, string store)
    {
        Interlocked.Exchange(ref _lastUsed, services.Time.GetTimestamp());
        services.Metrics.Decided(rule.Policy, decision.Allowed, store);
        if (services.HttpContexts.HttpContext is { } http)
        {
            http.Response.Headers["RateLimit-Policy"] = rule.PolicyHeader;
            http.Response.Headers["RateLimit"] = decision.Header(rule);
        }

        return new DecisionLease(decision, rule);
    }
}

/// <summary>A lease carrying its decision; the refusal handler reads Retry-After and the policy from it.</summary>
internal sealed class DecisionLease(RateDecision? decision, RateLimitRule? rule) : RateLimitLease
{
    /// <summary>"Not decided here": the synchronous attempt defers to the asynchronous one.</summary>
    public static readonly DecisionLease Deferred = new(null, null);

    public RateDecision? Decision => decision;

    public RateLimitRule? Rule => rule;

    public override bool IsAcquired => decision?.Allowed ?? false;

    public override IEnumerable<string> MetadataNames => decision is null ? [] : [MetadataName.RetryAfter.Name];

    public override bool TryGetMetadata(string metadataName, out object? metadata)
    {
        metadata = decision is not null && metadataName == MetadataName.RetryAfter.Name ? decision.RetryAfter : null;
        return metadata is not null;
    }
}
