"""The label vocabulary: breeds and grooming services, shipped as data and editable by admins."""
