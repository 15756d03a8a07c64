"""What every wing uses: errors, configs as CLI flags, constants, atomic writes, paths, progress, locks."""
