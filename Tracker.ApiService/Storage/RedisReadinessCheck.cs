using Microsoft.Extensions.Diagnostics.HealthChecks;
using StackExchange.Redis;

namespace Tracker.ApiService.Storage;

/// <summary>
/// Redis readiness that honours the health check's timeout. The integration's own check awaits a PING that,
/// when the server dies mid-command, only fails after the client's full command timeout; a probe must not hang
/// that long. Probes within a second share one PING (<see cref="SharedReadinessProbe"/>).
/// </summary>
internal sealed class RedisReadinessCheck(IConnectionMultiplexer redis, TimeProvider time) : IHealthCheck
{
    private readonly SharedReadinessProbe _probe = new(time);

    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        _probe.RunAsync(token => PingAsync(context.Registration.FailureStatus, token), cancellationToken);

    private async Task<HealthCheckResult> PingAsync(HealthStatus failureStatus, CancellationToken cancellationToken)
    {
        try
        {
            await redis.GetDatabase().PingAsync().WaitAsync(cancellationToken);
            return HealthCheckResult.Healthy();
        }
        catch (Exception exception) when (RedisAvailability.IsCommandFailure(exception) || exception is OperationCanceledException)
        {
            // No exception attached: the health service would log its stack on every probe, and the outage is
            // already logged once, when it starts, by RedisAvailability.
            return new HealthCheckResult(failureStatus, $"Redis does not answer ({exception.GetType().Name}).");
        }
    }
}
