using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;
using Tracker.Data.Entities;

namespace Tracker.Data.Configurations;

internal sealed class ClientConfiguration : IEntityTypeConfiguration<Client>
{
    public void Configure(EntityTypeBuilder<Client> builder)
    {
        builder.ToTable("clients");
        builder.HasKey(client => client.Id).HasName("pk_clients");
        builder.Property(client => client.Id).ValueGeneratedNever();
        builder.Property(client => client.Name).HasMaxLength(Client.NameMaxLength);
        builder.Property(client => client.Email).HasMaxLength(Client.EmailMaxLength);
        builder.Property(client => client.NormalizedEmail).HasMaxLength(Client.EmailMaxLength);
        builder.Property(client => client.PasswordHash).HasColumnType("text");
        builder.Property(client => client.CreatedAt).HasColumnType("timestamptz");
        builder.Property(client => client.UpdatedAt).HasColumnType("timestamptz");

        // Decides "email already registered", also between concurrent registrations.
        builder.HasIndex(client => client.NormalizedEmail)
            .IsUnique()
            .HasDatabaseName("ux_clients_normalized_email");
    }
}
