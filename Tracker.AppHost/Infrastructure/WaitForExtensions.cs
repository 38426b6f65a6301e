namespace Tracker.AppHost.Infrastructure;

internal static class WaitForExtensions
{
    /// <summary>Waits for every server of the chosen infrastructure (none when they are external).</summary>
    public static IResourceBuilder<T> WaitFor<T>(this IResourceBuilder<T> resource, IEnumerable<IResourceBuilder<IResource>> dependencies)
        where T : IResourceWithWaitSupport
    {
        foreach (var dependency in dependencies)
        {
            resource.WaitFor(dependency);
        }

        return resource;
    }
}
