namespace Tracker.ApiService.Storage;

/// <summary>
/// Creates the Redis connection before the server takes requests. The integration creates it on first use,
/// synchronously; when the first use is many concurrent requests, each blocks a thread-pool thread on it while
/// the connect itself needs the pool, and the API stalls for seconds. With AbortOnConnectFail off this returns
/// even when Redis is down (after the connect timeout), and the client keeps reconnecting by itself.
/// </summary>
internal sealed class RedisConnectionWarmup(IServiceProvider services) : IHostedLifecycleService
{
    public Task StartingAsync(CancellationToken cancellationToken) =>
        // Resolving RedisAvailability connects and subscribes it to the connection's events, so an outage that
        // starts before the first request is noticed too.
        Task.Run(() => services.GetRequiredService<RedisAvailability>(), cancellationToken);

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
