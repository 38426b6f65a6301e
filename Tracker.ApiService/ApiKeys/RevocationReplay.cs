using Tracker.ApiService.Storage;

namespace Tracker.ApiService.ApiKeys;

/// <summary>
/// Makes revocations made while Redis was unreachable hold once it answers again. Such a revocation reached
/// PostgreSQL and the revoking instance's memory only; Redis, back with its data, would still hold the key as
/// active and hand it to every instance for up to ten minutes. So each time this instance's connection is
/// restored, it removes the recently revoked keys from Redis (<see cref="ApiKeyStore.ForgetRecentlyRevokedAsync"/>)
/// — every instance does, whichever reconnects first.
/// </summary>
public sealed partial class RevocationReplay(
    RedisAvailability redis, ApiKeyStore store, TimeProvider time, IHostApplicationLifetime lifetime, ILogger<RevocationReplay> logger)
    : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        redis.Restored += OnRestored;
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        redis.Restored -= OnRestored;
        return Task.CompletedTask;
    }

    private void OnRestored() => _ = Task.Run(ReplayAsync, CancellationToken.None);

    private async Task ReplayAsync()
    {
        var stopping = lifetime.ApplicationStopping;
        try
        {
            await store.ForgetRecentlyRevokedAsync(time, stopping);
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
        }
        catch (Exception exception)
        {
            // Redis lost again, or PostgreSQL unreachable: the next restored connection tries again.
            LogReplayFailed(exception);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not remove recently revoked API keys from Redis after it came back; revoked keys may work until their cache entries expire")]
    private partial void LogReplayFailed(Exception exception);
}
