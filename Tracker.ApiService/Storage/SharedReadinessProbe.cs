using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Tracker.ApiService.Storage;

/// <summary>
/// One dependency check shared by every <c>/health</c> probe within a second. The endpoint needs no credential, so
/// without this whoever can reach it turns each hit into a database query or a Redis command; now concurrent probes
/// await the check in flight, and a result is reused for <see cref="Lifetime"/> after it completes.
/// </summary>
internal sealed class SharedReadinessProbe(TimeProvider time)
{
    public static readonly TimeSpan Lifetime = TimeSpan.FromSeconds(1);

    // The same bound the service defaults give each health check; the shared run needs its own (see RunSharedAsync).
    private static readonly TimeSpan CheckTimeout = TimeSpan.FromSeconds(3);

    private readonly Lock _lock = new();
    private Task<HealthCheckResult>? _current;
    private long _completedAt;

    /// <summary>The result of <paramref name="check"/>: the one in flight, one completed within <see cref="Lifetime"/>, or a new run.</summary>
    public Task<HealthCheckResult> RunAsync(Func<CancellationToken, Task<HealthCheckResult>> check, CancellationToken cancellationToken)
    {
        Task<HealthCheckResult> current;
        lock (_lock)
        {
            if (_current is null || (_current.IsCompleted && time.GetElapsedTime(Volatile.Read(ref _completedAt)) >= Lifetime))
            {
                _current = RunSharedAsync(check);
            }

            current = _current;
        }

        return current.WaitAsync(cancellationToken);
    }

    private async Task<HealthCheckResult> RunSharedAsync(Func<CancellationToken, Task<HealthCheckResult>> check)
    {
        // Not the caller's token: one probe giving up must not cancel the check the others are waiting for.
        using var timeout = new CancellationTokenSource(CheckTimeout, time);
        try
        {
            await Task.Yield();
            return await check(timeout.Token);
        }
        finally
        {
            Volatile.Write(ref _completedAt, time.GetTimestamp());
        }
    }
}
