"""The seed's ``my_project``: a package holding the example agents."""
