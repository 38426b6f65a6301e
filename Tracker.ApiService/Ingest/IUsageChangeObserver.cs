namespace Tracker.ApiService.Ingest;

/// <summary>
/// Told, after each commit, which clients' usage changed, so usage caches can refresh them. The analytics
/// capability provides the real observer; until then nothing listens.
/// </summary>
public interface IUsageChangeObserver
{
    void UsageChanged(IReadOnlyCollection<Guid> clientIds);
}

internal sealed class NoUsageObserver : IUsageChangeObserver
{
    public void UsageChanged(IReadOnlyCollection<Guid> clientIds)
    {
    }
}
