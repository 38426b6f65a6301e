namespace Tracker.AppHost.Infrastructure;

/// <summary>Where PostgreSQL and Redis come from (<c>Tracker:Infrastructure</c>).</summary>
internal enum InfrastructureMode
{
    /// <summary>Aspire's PostgreSQL and Redis containers; needs an answering Docker or Podman engine.</summary>
    Containers,

    /// <summary>The machine's own <c>postgres</c> and <c>redis-server</c>, run by the AppHost as executables.</summary>
    LocalProcesses,

    /// <summary>Servers started elsewhere, named by <c>ConnectionStrings:trackerdb</c> and <c>ConnectionStrings:cache</c>.</summary>
    External,
}
