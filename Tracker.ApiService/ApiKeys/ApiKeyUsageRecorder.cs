using System.Collections.Concurrent;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Tracker.Data;

namespace Tracker.ApiService.ApiKeys;

public sealed class ApiKeyUsageOptions
{
    public const string SectionName = "ApiKeys";

    /// <summary>How often recorded uses are written to <c>api_keys.last_used_at</c>.</summary>
    [System.ComponentModel.DataAnnotations.Range(1, 300)]
    public int UsageFlushIntervalSeconds { get; set; } = 15;
}

/// <summary>
/// Keeps "last used" without writing on the ingest hot path: a use is noted in memory (at most once a minute
/// per key) and written in one statement per flush, which also skips rows updated less than a minute ago.
/// </summary>
public sealed class ApiKeyUsageRecorder(TimeProvider time)
{
    private static readonly TimeSpan MinimumInterval = TimeSpan.FromMinutes(1);

    private readonly ConcurrentDictionary<Guid, DateTimeOffset> _lastNoted = new();
    private ConcurrentDictionary<Guid, DateTimeOffset> _pending = new();

    public void Record(Guid apiKeyId)
    {
        var now = time.GetUtcNow();
        if (_lastNoted.TryGetValue(apiKeyId, out var last) && now - last < MinimumInterval)
        {
            return;
        }

        _lastNoted[apiKeyId] = now;
        _pending[apiKeyId] = now;
    }

    /// <summary>Takes what was recorded since the last call.</summary>
    public IReadOnlyDictionary<Guid, DateTimeOffset> TakePending() => Interlocked.Exchange(ref _pending, new());
}

/// <summary>Writes recorded key uses periodically, and once more on shutdown.</summary>
public sealed partial class ApiKeyUsageFlusher(
    ApiKeyUsageRecorder recorder,
    IServiceScopeFactory scopes,
    IOptions<ApiKeyUsageOptions> options,
    ILogger<ApiKeyUsageFlusher> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(options.Value.UsageFlushIntervalSeconds));
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                await FlushAsync(stoppingToken);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }

        await FlushAsync(CancellationToken.None);
    }

    public async Task FlushAsync(CancellationToken cancellationToken)
    {
        var pending = recorder.TakePending();
        if (pending.Count == 0)
        {
            return;
        }

        try
        {
            await using var scope = scopes.CreateAsyncScope();
            var db = scope.ServiceProvider.GetRequiredService<TrackerDbContext>();
            var ids = pending.Keys.ToArray();
            var times = ids.Select(id => pending[id]).ToArray();
            await db.Database.ExecuteSqlAsync($"""
                UPDATE api_keys AS k SET last_used_at = u.used_at
                FROM unnest({ids}::uuid[], {times}::timestamptz[]) AS u(id, used_at)
                WHERE k.id = u.id AND (k.last_used_at IS NULL OR k.last_used_at < u.used_at - interval '1 minute')
                """, cancellationToken);
        }
        catch (Exception exception) when (exception is not OperationCanceledException)
        {
            // "Last used" is informational: losing one flush is better than failing or retrying forever.
            LogFlushFailed(exception, pending.Count);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not record the last use of {Count} API key(s)")]
    private partial void LogFlushFailed(Exception exception, int count);
}
