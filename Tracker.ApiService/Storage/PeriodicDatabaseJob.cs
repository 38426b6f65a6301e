using Npgsql;

namespace Tracker.ApiService.Storage;

/// <summary>
/// A background job over PostgreSQL that runs at start and then every <paramref name="interval"/>: a run that fails
/// for the database (<see cref="NpgsqlException"/>, <see cref="TimeoutException"/>) is reported to
/// <see cref="OnRunFailed"/> and the next tick tries again; anything else stops the host, as a fault should.
/// </summary>
public abstract class PeriodicDatabaseJob(TimeSpan interval, TimeProvider time) : BackgroundService
{
    /// <summary>The clock the timer runs on, for the job's own use.</summary>
    protected TimeProvider Time => time;

    /// <summary>One run of the job, from the timer.</summary>
    protected abstract Task RunScheduledAsync(CancellationToken cancellationToken);

    /// <summary>Logs a run that failed for the database, saying why waiting for the next one is safe.</summary>
    protected abstract void OnRunFailed(Exception exception);

    protected sealed override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(interval, time);
        do
        {
            try
            {
                await RunScheduledAsync(stoppingToken);
            }
            catch (Exception exception) when (exception is NpgsqlException or TimeoutException)
            {
                OnRunFailed(exception);
            }
        }
        while (await WaitAsync(timer, stoppingToken));
    }

    private static async Task<bool> WaitAsync(PeriodicTimer timer, CancellationToken stoppingToken)
    {
        try
        {
            return await timer.WaitForNextTickAsync(stoppingToken);
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }
}
